"""The one movie-reader interface shared by the MRC, TIFF and EER readers."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from semc.base.errors import InputMissing, InvalidParameters
from semc.base.io.grouping import FrameGrouping

__all__ = ["MovieReader"]

logger = logging.getLogger(__name__)


class MovieReader:
    """A dose-fractionated movie, opened for reading.

    Attributes
    ----------
    path : str
    format : str
        ``"mrc"``, ``"tiff"`` or ``"eer"``.
    n_frames : int
        Raw frames (detector frames for EER).
    frame_shape : tuple[int, int]
        ``(ny, nx)`` of a frame as rendered (EER: sensor size × upsampling).
    dtype : numpy.dtype
        Type of :meth:`read_frames` output.
    pixel_size_angstrom : float | None
        Pixel size of a rendered frame, when the file states it.

    Subclasses implement ``_read(start, stop)`` and may override
    ``_iter_group_sums(bounds)`` (a generator of float32 group sums).
    """

    format: str = ""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise InputMissing("movie not found", step="io", path=self.path)
        self.n_frames = 0
        self.frame_shape: tuple[int, int] = (0, 0)
        self.dtype = np.dtype(np.float32)
        self.pixel_size_angstrom: float | None = None

    # context manager -----------------------------------------------------
    def __enter__(self) -> "MovieReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file (idempotent)."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.path!r}, n_frames={self.n_frames}, "
            f"frame_shape={self.frame_shape}, dtype={self.dtype})"
        )

    # public API ----------------------------------------------------------
    def read_frames(self, start: int = 0, stop: int | None = None) -> NDArray:
        """Frames ``start:stop`` as one array.

        Returns
        -------
        numpy.ndarray
            ``(n, ny, nx)`` of :attr:`dtype` (EER: uint8 event counts).

        Raises
        ------
        InvalidParameters
            On an empty or out-of-range frame range.
        CorruptInput
            When a frame cannot be decoded (names the frame).
        """
        start, stop = self._check_range(start, stop)
        return self._read(start, stop)

    def iter_groups(self, grouping: FrameGrouping) -> Iterator[NDArray[np.float32]]:
        """Yield the float32 ``(ny, nx)`` sum of each group, holding only a few groups in memory."""
        bounds = self._check_grouping(grouping)
        yield from self._iter_group_sums(bounds)

    def read_grouped(self, grouping: FrameGrouping, dtype: npt.DTypeLike = np.float32) -> NDArray:
        """All group sums, ``(n_groups, ny, nx)``, float32 unless asked otherwise.

        ``dtype`` may be an unsigned integer type when the frames hold counts
        (uint8 EER events, counting-mode TIFF) and no sum can exceed it: the group
        sums of a counting movie are then stored exactly in a quarter (uint16) of
        the float32 memory.

        Raises
        ------
        InvalidParameters
            On a bad grouping, or an integer ``dtype`` that the sums could overflow.
        """
        bounds = self._check_grouping(grouping)
        out_type = np.dtype(dtype)
        if out_type.kind in "ui" and not self._sums_fit(bounds, out_type):
            raise InvalidParameters(f"{max(b - a for a, b in bounds)}-frame sums of {self.dtype} frames do not "
                                    f"fit {out_type}", step="io", path=self.path)
        out = np.empty((len(bounds),) + self.frame_shape, dtype=out_type)
        for i, group in enumerate(self._iter_group_sums(bounds)):
            out[i] = group
        return out

    def exact_sum_dtype(self, grouping: FrameGrouping) -> np.dtype | None:
        """uint16 when every group sum of these unsigned-integer frames (counts) fits it, else None.

        The dtype to pass to `read_grouped` for exact sums in a quarter of the float32 memory.
        """
        bounds = self._check_grouping(grouping)
        return np.dtype(np.uint16) if self._sums_fit(bounds, np.dtype(np.uint16)) else None

    def _sums_fit(self, bounds: list[tuple[int, int]], out_type: np.dtype) -> bool:
        largest = max(b - a for a, b in bounds)
        return self.dtype.kind == "u" and largest * np.iinfo(self.dtype).max <= np.iinfo(out_type).max

    # for subclasses ------------------------------------------------------
    def _read(self, start: int, stop: int) -> NDArray:
        raise NotImplementedError

    #: frames decoded per block when summing groups (subclasses tune it to their threading)
    _block_frames: int = 8

    def _iter_group_sums(self, bounds: list[tuple[int, int]]) -> Iterator[NDArray[np.float32]]:
        """Decode blocks of frames that may span groups, so small groups still decode in parallel."""
        if not bounds:
            return
        first, last = bounds[0][0], bounds[-1][1]
        block = max(1, int(self._block_frames))
        acc = np.zeros(self.frame_shape, dtype=np.float32)
        gi = 0
        for lo in range(first, last, block):
            frames = self._read(lo, min(last, lo + block))
            for k in range(frames.shape[0]):
                i = lo + k
                np.add(acc, frames[k], out=acc, casting="unsafe")
                if i + 1 == bounds[gi][1]:
                    yield acc
                    acc = np.zeros(self.frame_shape, dtype=np.float32)
                    gi += 1
                    if gi == len(bounds):
                        return

    def _check_range(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = self.n_frames if stop is None else int(stop)
        start = int(start)
        if not 0 <= start < stop <= self.n_frames:
            raise InvalidParameters(
                f"frame range {start}:{stop} outside 0:{self.n_frames}", step="io", path=self.path
            )
        return start, stop

    def _check_grouping(self, grouping: FrameGrouping) -> list[tuple[int, int]]:
        if not isinstance(grouping, FrameGrouping):
            raise InvalidParameters("grouping must be a FrameGrouping", step="io", path=self.path)
        if grouping.n_frames_used > self.n_frames:
            raise InvalidParameters(
                f"grouping uses {grouping.n_frames_used} frames, the movie has {self.n_frames}",
                step="io",
                path=self.path,
            )
        return grouping.bounds()
