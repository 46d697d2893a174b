"""MRC/MRCS movies and images: a memory-mapped reader and an atomic writer (via mrcfile).

Modes read: 0 (int8), 1 (int16), 2 (float32), 6 (uint16), 12 (float16).
A 2-D file is a one-frame movie; a 3-D file (stack or volume) is a movie of nz frames.
"""

from __future__ import annotations

import logging
import os
import warnings

import mrcfile
import numpy as np
from numpy.typing import NDArray

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io.atomic import atomic_target
from semc.base.io.reader import MovieReader

__all__ = ["MrcMovie", "write_mrc", "mrc_expected_size", "MRC_MODE_DTYPES"]

logger = logging.getLogger(__name__)

#: MRC2014 modes we read and write, and their numpy types
MRC_MODE_DTYPES: dict[int, np.dtype] = {
    0: np.dtype(np.int8),
    1: np.dtype(np.int16),
    2: np.dtype(np.float32),
    6: np.dtype(np.uint16),
    12: np.dtype(np.float16),
}
_HEADER_BYTES = 1024


def mrc_expected_size(path: str | os.PathLike[str]) -> tuple[int, int, int, int, int]:
    """Expected file size from the MRC header, without trusting the rest of the file.

    Returns
    -------
    tuple
        ``(expected_bytes, data_offset, frame_bytes, n_frames, mode)``.

    Raises
    ------
    CorruptInput
        Header shorter than 1024 bytes, unknown mode, or nonsense dimensions.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        head = fh.read(_HEADER_BYTES)
    if len(head) < _HEADER_BYTES:
        raise CorruptInput(f"MRC header has {len(head)} of 1024 bytes", step="io", path=path)
    order = ">" if head[212] == 0x11 else "<"  # machine stamp (MRC2014: 0x44 0x44 little, 0x11 0x11 big)
    nx, ny, nz, mode = np.frombuffer(head, dtype=f"{order}i4", count=4)
    nsymbt = int(np.frombuffer(head, dtype=f"{order}i4", count=1, offset=92)[0])
    if int(mode) not in MRC_MODE_DTYPES:
        raise CorruptInput(f"unsupported or invalid MRC mode {int(mode)}", step="io", path=path)
    if min(nx, ny, nz) < 1 or nsymbt < 0 or max(nx, ny) > 1 << 17:
        raise CorruptInput(f"invalid MRC dimensions {nx}x{ny}x{nz}", step="io", path=path)
    frame_bytes = int(nx) * int(ny) * MRC_MODE_DTYPES[int(mode)].itemsize
    offset = _HEADER_BYTES + nsymbt
    return offset + frame_bytes * int(nz), offset, frame_bytes, int(nz), int(mode)


class MrcMovie(MovieReader):
    """An MRC/MRCS movie, memory-mapped.

    Raises
    ------
    InputMissing
        No file.
    CorruptInput
        Empty, truncated (``frame`` = first incomplete frame) or invalid header.
    """

    format = "mrc"

    def __init__(self, path: str | os.PathLike[str], *, permissive: bool = False) -> None:
        super().__init__(path)
        with open(self.path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        if gzipped:  # e.g. Appion's defect maps (.mrc.gz): read into memory, mrcfile validates
            self._mrc = self._open(mrcfile.open, permissive)
        else:
            self._check_size()
            self._mrc = self._open(mrcfile.mmap, permissive)
        data = self._mrc.data
        if data is None or data.size == 0:
            raise CorruptInput("MRC file has no data block", step="io", path=self.path)
        self._data = data if data.ndim == 3 else data.reshape((1,) + data.shape[-2:])
        self.n_frames = int(self._data.shape[0])
        self.frame_shape = (int(self._data.shape[1]), int(self._data.shape[2]))
        self.dtype = np.dtype(self._data.dtype).newbyteorder("=")
        voxel = float(self._mrc.voxel_size.x)
        self.pixel_size_angstrom = voxel if voxel > 0 else None

    def _check_size(self) -> None:
        expected, offset, frame_bytes, _nz, _mode = mrc_expected_size(self.path)
        size = os.path.getsize(self.path)
        if size < expected:
            frame = (size - offset) // frame_bytes if size > offset else 0
            raise CorruptInput(
                f"MRC file truncated: {size} of {expected} bytes", step="io", path=self.path, frame=frame
            )

    def _open(self, opener, permissive: bool):
        try:
            with warnings.catch_warnings():
                if not permissive:
                    warnings.simplefilter("error")
                return opener(self.path, mode="r", permissive=permissive)
        except (ValueError, RuntimeWarning, OSError, EOFError) as exc:
            raise CorruptInput(f"invalid MRC file: {exc}", step="io", path=self.path) from None

    def close(self) -> None:
        mrc = getattr(self, "_mrc", None)
        if mrc is not None:
            self._data = None
            mrc.close()
            self._mrc = None

    def _read(self, start: int, stop: int) -> NDArray:
        return np.array(self._data[start:stop], dtype=self.dtype)

    def _group_sum(self, start: int, stop: int) -> NDArray[np.float32]:
        out = np.zeros(self.frame_shape, dtype=np.float32)
        for i in range(start, stop):
            np.add(out, self._data[i], out=out, casting="unsafe")
        return out

    def _iter_group_sums(self, bounds):
        for start, stop in bounds:
            yield self._group_sum(start, stop)


def _mode_for(data: NDArray, mode: int | None) -> int:
    if mode is not None:
        if mode not in MRC_MODE_DTYPES:
            raise InvalidParameters(f"MRC mode must be one of {sorted(MRC_MODE_DTYPES)}, got {mode}", step="io")
        return mode
    kind = data.dtype
    if kind == np.bool_ or kind == np.uint8:
        return 0 if data.size == 0 or int(data.max()) <= 127 else 6
    for m, dt in MRC_MODE_DTYPES.items():
        if kind == dt:
            return m
    if kind == np.float64:
        return 2
    raise InvalidParameters(f"no MRC mode for dtype {kind}; pass mode=", step="io")


def _converted(data: NDArray, mode: int) -> NDArray:
    target = MRC_MODE_DTYPES[mode]
    if data.dtype == target:
        return data
    if target.kind in "iu":
        info = np.iinfo(target)
        if data.size and (np.nanmin(data) < info.min or np.nanmax(data) > info.max):
            raise InvalidParameters(f"values do not fit MRC mode {mode} ({target})", step="io")
        if data.dtype.kind == "f" and not np.array_equal(data, np.round(data)):
            raise InvalidParameters(f"non-integer values for integer MRC mode {mode}", step="io")
    return data.astype(target)


def write_mrc(
    path: str | os.PathLike[str],
    data: NDArray,
    *,
    pixel_size_angstrom: float | None,
    mode: int | None = None,
) -> None:
    """Write an image (2-D) or a frame stack (3-D) as MRC, atomically.

    Parameters
    ----------
    path
        Destination; written under a temporary name, then renamed.
    data
        ``(ny, nx)`` image or ``(n, ny, nx)`` stack.
    pixel_size_angstrom
        Written to the header (voxel size in Å); None leaves it 0 (unknown).
    mode
        MRC mode (0, 1, 2, 6, 12). Default from the dtype: float32/float64 -> 2,
        float16 -> 12, int8 -> 0, int16 -> 1, uint16 -> 6, uint8/bool -> 0 when
        every value is <= 127 (counts), else 6; so values always read back exactly.

    Raises
    ------
    InvalidParameters
        Wrong number of dimensions, unsupported dtype, or values that do not fit the mode.
    """
    data = np.asarray(data)
    if data.ndim not in (2, 3):
        raise InvalidParameters(f"MRC data must be 2-D or 3-D, got shape {data.shape}", step="io")
    if pixel_size_angstrom is not None and not pixel_size_angstrom > 0:
        raise InvalidParameters(f"pixel size must be > 0, got {pixel_size_angstrom}", step="io")
    m = _mode_for(data, mode)
    out = np.ascontiguousarray(_converted(data, m))
    with atomic_target(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            if out.ndim == 3:
                mrc.set_data(out)
                mrc.set_image_stack()
            else:
                mrc.set_data(out)
            if pixel_size_angstrom is not None:
                mrc.voxel_size = float(pixel_size_angstrom)
    logger.debug("wrote MRC %s shape=%s mode=%d", path, out.shape, m)
