"""Multi-page TIFF movies (K2/K3/SerialEM style): a threaded reader and an LZW writer.

Pages are frames. Sample types uint8, uint16, float32 (and int8/int16);
compression none, LZW or deflate, decoded by tifffile + imagecodecs on
:func:`semc.base.parallel.io_threads` threads. The pixel size is read from, and
written to, XResolution with ResolutionUnit centimetre (pixels per cm).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

import numpy as np
import tifffile
from numpy.typing import NDArray

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io.atomic import atomic_target
from semc.base.io.reader import MovieReader
from semc.base.parallel import io_threads

__all__ = ["TiffMovie", "write_tiff_movie", "tiff_pages_complete"]

logger = logging.getLogger(__name__)

_ANGSTROM_PER_CM = 1.0e8
_ANGSTROM_PER_INCH = 2.54e8
_COMPRESSIONS = {"lzw": "lzw", "deflate": "zlib", "zlib": "zlib", "none": None, None: None}
_DTYPES = (np.uint8, np.uint16, np.float32, np.int8, np.int16)


def _open_tiff(path: str) -> tifffile.TiffFile:
    if os.path.getsize(path) == 0:
        raise CorruptInput("TIFF file is empty", step="io", path=path)
    try:
        return tifffile.TiffFile(path)
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for a bad file
        raise CorruptInput(f"not a readable TIFF: {exc}", step="io", path=path) from None


def _chain_cut(tif: tifffile.TiffFile, size_bytes: int) -> bool:
    """Whether the last IFD tifffile could parse still points to a next one (absent or cut short).

    A complete file ends its IFD chain with a 0 pointer; tifffile stops (and logs) at
    an IFD that lies past the end of the file or is only partly written.
    """
    last = tif.pages[len(tif.pages) - 1]
    big = tif.is_bigtiff
    order = tif.byteorder
    count_bytes, entry_bytes, ptr_dtype = (8, 20, order + "u8") if big else (2, 12, order + "u4")
    fh = tif.filehandle
    fh.seek(last.offset)
    raw = fh.read(count_bytes)
    if len(raw) < count_bytes:
        return True
    n_entries = int(np.frombuffer(raw, dtype=order + ("u8" if big else "u2"))[0])
    fh.seek(last.offset + count_bytes + entry_bytes * n_entries)
    ptr = fh.read(np.dtype(ptr_dtype).itemsize)
    if len(ptr) < np.dtype(ptr_dtype).itemsize:
        return True
    nxt = int(np.frombuffer(ptr, dtype=ptr_dtype)[0])
    return nxt != 0


def tiff_pages_complete(tif: tifffile.TiffFile, size_bytes: int) -> tuple[int, int | None]:
    """Count pages and find the first page whose strips/tiles run past ``size_bytes``.

    A chain of IFDs that points past the end of the file (the next page's IFD not
    yet written) counts as a missing page ``n_pages``.

    Returns
    -------
    tuple
        ``(n_pages, first_bad_page or None)``.
    """
    pages = tif.pages
    n = len(pages)
    for i in range(n):
        page = pages[i]
        offsets, counts = page.dataoffsets, page.databytecounts
        if not offsets or any(o + c > size_bytes for o, c in zip(offsets, counts)) or 0 in counts:
            return n, i
    if n and _chain_cut(tif, size_bytes):
        return n, n
    return n, None


def _pixel_size_from_page(page: tifffile.TiffPage) -> float | None:
    tags = page.tags
    if "XResolution" not in tags or "ResolutionUnit" not in tags:
        return None
    unit = int(tags["ResolutionUnit"].value)
    num, den = tags["XResolution"].value
    if num <= 0 or den <= 0:
        return None
    per_unit = num / den
    if unit == 3:
        return _ANGSTROM_PER_CM / per_unit
    if unit == 2:
        return _ANGSTROM_PER_INCH / per_unit
    return None


class TiffMovie(MovieReader):
    """A multi-page TIFF movie.

    Raises
    ------
    InputMissing
        No file.
    CorruptInput
        Empty, not a TIFF, pages of different shape or type, or strips past
        the end of the file (``frame`` = first incomplete page).
    """

    format = "tiff"

    def __init__(self, path: str | os.PathLike[str], *, permissive: bool = False) -> None:
        super().__init__(path)
        self._tif = _open_tiff(self.path)
        try:
            self._inspect(permissive)
        except BaseException:
            self.close()
            raise
        self._block_frames = max(4, 2 * io_threads())

    def _inspect(self, permissive: bool) -> None:
        size = os.path.getsize(self.path)
        n, bad = tiff_pages_complete(self._tif, size)
        if n == 0:
            raise CorruptInput("TIFF has no pages", step="io", path=self.path)
        if bad is not None:
            raise CorruptInput("TIFF page data missing (truncated file)", step="io", path=self.path, frame=bad)
        first = self._tif.pages[0]
        if len(first.shape) != 2:
            raise CorruptInput(f"TIFF pages are not 2-D images: {first.shape}", step="io", path=self.path)
        for i in range(1, n):
            page = self._tif.pages[i]
            if page.shape != first.shape or page.dtype != first.dtype:
                raise CorruptInput(
                    f"TIFF page {page.shape} {page.dtype} differs from page 0", step="io", path=self.path, frame=i
                )
        self.n_frames = n
        self.frame_shape = (int(first.shape[0]), int(first.shape[1]))
        self.dtype = np.dtype(first.dtype)
        self.pixel_size_angstrom = _pixel_size_from_page(first)

    def close(self) -> None:
        tif = getattr(self, "_tif", None)
        if tif is not None:
            tif.close()
            self._tif = None

    def _read(self, start: int, stop: int) -> NDArray:
        try:
            data = self._tif.asarray(key=range(start, stop), maxworkers=io_threads())
        except Exception:  # noqa: BLE001 - find and name the frame that fails
            self._raise_first_bad(start, stop)
            raise
        return data.reshape((stop - start,) + self.frame_shape)

    def _raise_first_bad(self, start: int, stop: int) -> None:
        for i in range(start, stop):
            try:
                self._tif.pages[i].asarray()
            except Exception as exc:  # noqa: BLE001
                raise CorruptInput(f"cannot decode TIFF page: {exc}", step="io", path=self.path, frame=i) from None
        raise CorruptInput("cannot decode TIFF pages", step="io", path=self.path, frame=start)


def write_tiff_movie(
    path: str | os.PathLike[str],
    frames: NDArray | Iterable[NDArray],
    *,
    compression: str | None = "lzw",
    pixel_size_angstrom: float | None = None,
    bigtiff: bool | None = None,
) -> int:
    """Write frames as a multi-page TIFF (one strip-organised page per frame), atomically.

    Parameters
    ----------
    path
        Destination.
    frames
        ``(n, ny, nx)`` array, one ``(ny, nx)`` image, or an iterable of
        ``(ny, nx)`` arrays (written one at a time, so a simulator need not hold
        the movie). Types: uint8, uint16, float32, int8, int16.
    compression
        ``"lzw"`` (as K2/K3 cameras write), ``"deflate"`` or ``"none"``/None.
    pixel_size_angstrom
        Stored as XResolution/YResolution in pixels per cm.
    bigtiff
        Force BigTIFF on or off; default: on when an array exceeds ~3.7 GB, or
        when frames come from an iterable (length unknown).

    Returns
    -------
    int
        Number of pages written.

    Raises
    ------
    InvalidParameters
        Unknown compression, bad type or shape, frames of differing shape, no frames.
    """
    if compression not in _COMPRESSIONS:
        raise InvalidParameters(f"compression must be lzw, deflate or none, got {compression!r}", step="io")
    if pixel_size_angstrom is not None and not pixel_size_angstrom > 0:
        raise InvalidParameters(f"pixel size must be > 0, got {pixel_size_angstrom}", step="io")
    if isinstance(frames, np.ndarray):
        frames = frames[None] if frames.ndim == 2 else frames
        if frames.ndim != 3:
            raise InvalidParameters(f"frames must be (n, ny, nx), got {frames.shape}", step="io")
    extra: dict = {}
    if pixel_size_angstrom is not None:
        per_cm = _ANGSTROM_PER_CM / float(pixel_size_angstrom)
        extra = {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"}
    count = 0
    shape = None
    with atomic_target(path) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=_needs_bigtiff(frames) if bigtiff is None else bigtiff) as writer:
            for frame in frames:
                frame = np.asarray(frame)
                if frame.ndim != 2 or frame.dtype.type not in _DTYPES:
                    raise InvalidParameters(f"frame {count}: need a 2-D uint8/uint16/float32 image", step="io")
                if shape is not None and frame.shape != shape:
                    raise InvalidParameters(f"frame {count} has shape {frame.shape}, not {shape}", step="io")
                shape = frame.shape
                writer.write(frame, photometric="minisblack", compression=_COMPRESSIONS[compression],
                             metadata=None, rowsperstrip=_rows_per_strip(frame), **extra)
                count += 1
        if count == 0:
            raise InvalidParameters("no frames to write", step="io")
    logger.debug("wrote TIFF %s frames=%d compression=%s", path, count, compression)
    return count


def _rows_per_strip(frame: NDArray) -> int:
    # about 64 kB strips (LZW cameras write strips of this order), at least one row
    return max(1, min(frame.shape[0], (1 << 16) // max(1, frame.shape[1] * frame.itemsize)))


def _needs_bigtiff(frames: object) -> bool:
    if isinstance(frames, np.ndarray):
        return frames.nbytes > 2**32 - 2**28
    return True  # unknown length: BigTIFF is always safe
