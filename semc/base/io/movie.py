"""Open any movie by its content (MRC, TIFF, EER) and read single images (references)."""

from __future__ import annotations

import logging
import os

import numpy as np
from numpy.typing import NDArray

from semc.base.errors import CorruptInput, InputMissing, InvalidParameters
from semc.base.io.reader import MovieReader

__all__ = ["open_movie", "read_image", "movie_format"]

logger = logging.getLogger(__name__)

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def movie_format(path: str | os.PathLike[str]) -> str:
    """``"mrc"``, ``"tiff"`` or ``"eer"``, from the file's first bytes and its name.

    An EER is a TIFF whose name ends in ``.eer`` (the compression tag is
    checked when it is opened); other TIFFs are ``"tiff"``; anything else is
    taken as MRC (whose header is then validated).

    Raises
    ------
    InputMissing
        No file.
    CorruptInput
        Empty or unreadable file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputMissing("file not found", step="io", path=path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CorruptInput(f"cannot read file: {exc}", step="io", path=path) from None
    if not magic:
        raise CorruptInput("file is empty", step="io", path=path)
    if magic in _TIFF_MAGIC:
        return "eer" if path.lower().endswith(".eer") else "tiff"
    if path.lower().endswith((".tif", ".tiff", ".eer")):
        raise CorruptInput("file named as TIFF/EER has no TIFF header", step="io", path=path)
    return "mrc"


def open_movie(
    path: str | os.PathLike[str],
    *,
    eer_upsampling: int = 1,
    permissive: bool = False,
    eer_65000_max_run_has_subpixel: bool = True,
) -> MovieReader:
    """Open a movie for reading (use as a context manager, or call ``close()``).

    Parameters
    ----------
    path
        MRC/MRCS, TIFF or EER file.
    eer_upsampling
        EER rendering: 1 (sensor grid, 4K), 2 (8K) or 4 (16K).
    permissive
        MRC: accept header problems with a warning instead of an error; EER: a frame
        whose stream ends early is rendered with a warning instead of an error.
    eer_65000_max_run_has_subpixel
        65000 (8-bit) EER only: whether a run of 255 carries 4 sub-pixel bits, as
        RELION reads it (default), or not, as imagecodecs reads it (infra.md §3).
        The two agree on every stream without a run of 255.

    Raises
    ------
    InputMissing, CorruptInput, InvalidParameters
    """
    kind = movie_format(path)
    if kind == "mrc":
        from semc.base.io.mrc import MrcMovie

        return MrcMovie(path, permissive=permissive)
    if kind == "tiff":
        from semc.base.io.tiff import TiffMovie

        return TiffMovie(path, permissive=permissive)
    from semc.base.io.eer import EerMovie

    return EerMovie(path, upsampling=eer_upsampling, permissive=permissive,
                    max_run_has_subpixel=eer_65000_max_run_has_subpixel)


def read_image(path: str | os.PathLike[str]) -> tuple[NDArray, float | None]:
    """Read a 2-D image (gain, dark, defect map, micrograph) from MRC or TIFF.

    Returns
    -------
    tuple
        ``(image (ny, nx) in the file's type, pixel size in Å or None)``.

    Raises
    ------
    InputMissing, CorruptInput
        As :func:`open_movie`.
    InvalidParameters
        When the file holds more than one image.
    """
    kind = movie_format(path)
    if kind == "eer":
        raise InvalidParameters("an EER movie is not an image", step="io", path=os.fspath(path))
    with open_movie(path) as movie:
        if movie.n_frames != 1:
            raise InvalidParameters(
                f"expected one image, the file has {movie.n_frames}", step="io", path=os.fspath(path)
            )
        return np.ascontiguousarray(movie.read_frames()[0]), movie.pixel_size_angstrom
