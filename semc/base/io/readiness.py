"""Is a movie fully transferred? Completeness from the file's own structure, stability across checks.

- MRC: the size the header promises (1024 + extended header + nx·ny·nz·bytes) is there.
- TIFF / EER: the IFD chain parses, and every page's strips lie inside the file;
  for EER the page count equals the XML ``numberOfFrames`` when present; for any
  format the frame count equals ``expected_frames`` when the caller knows it.
- Stable: size and mtime equal those of the ``previous`` check (or, with no
  previous check, the file has been untouched for ``quiet_s`` seconds).

A file that cannot become valid by growing (a non-MRC/TIFF header, an invalid
MRC mode, a TIFF page that is not EER in an ``.eer``) raises ``CorruptInput``, so
the daemon can tell "not yet transferred" from "broken".
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import tifffile

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io.movie import movie_format
from semc.base.io.mrc import mrc_expected_size
from semc.base.io.tiff import tiff_pages_complete

__all__ = ["Readiness", "movie_readiness"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Readiness:
    """Result of one readiness check.

    Parameters
    ----------
    complete
        Every byte the file's structure promises is present.
    stable
        Size and mtime unchanged since the previous check (or quiet long enough).
    size_bytes
        File size at this check (0 when missing).
    mtime
        Modification time at this check, seconds since the epoch (0 when missing).
    reason
        Why it is not ready, or ``"ready"``.
    n_frames
        Frames found, when known.
    """

    complete: bool
    stable: bool
    size_bytes: int
    mtime: float
    reason: str
    n_frames: int | None = None

    def __post_init__(self) -> None:
        if self.size_bytes < 0:
            raise InvalidParameters("size_bytes must be >= 0", step="io")

    @property
    def ready(self) -> bool:
        """Complete and stable."""
        return self.complete and self.stable


def _mrc_completeness(path: str, size: int) -> tuple[bool, str, int | None]:
    if size < 1024:
        return False, f"MRC header incomplete ({size} of 1024 bytes)", None
    expected, _offset, _fb, nz, _mode = mrc_expected_size(path)
    if size < expected:
        return False, f"MRC data incomplete ({size} of {expected} bytes)", nz
    return True, "complete", nz


def _tiff_completeness(path: str, size: int, eer: bool) -> tuple[bool, str, int | None]:
    try:
        with tifffile.TiffFile(path) as tif:
            n, bad = tiff_pages_complete(tif, size)
            first = tif.pages[0]
            if eer and int(first.compression) not in (65000, 65001, 65002):
                raise CorruptInput(f"TIFF compression {int(first.compression)} is not EER", step="io", path=path)
            declared = None
            if eer and isinstance(first.tags.valueof(65001), bytes):
                from semc.base.io.eer import eer_metadata_from_xml

                declared = eer_metadata_from_xml(first.tags.valueof(65001)).get("numberOfFrames")
    except CorruptInput:
        raise
    except Exception as exc:  # noqa: BLE001 - a TIFF cut inside its IFDs fails in many ways
        return False, f"TIFF structure incomplete ({type(exc).__name__}: {exc})", None
    if bad is not None:
        return False, f"page {bad} data past the end of the file", n
    if declared is not None and declared.isdigit() and int(declared) != n:
        return False, f"{n} of {declared} EER frames present", n
    return True, "complete", n


def movie_readiness(
    path: str | os.PathLike[str],
    *,
    previous: Readiness | None = None,
    expected_frames: int | None = None,
    quiet_s: float | None = None,
) -> Readiness:
    """Check whether a movie is complete and stable.

    Parameters
    ----------
    path
        MRC, TIFF or EER movie.
    previous
        The result of the previous check of this path, for stability.
    expected_frames
        Frames the movie must have (e.g. CameraEMData ``nframes``), when known.
    quiet_s
        With no ``previous``: stable when the mtime is at least this many seconds old.

    Returns
    -------
    Readiness

    Raises
    ------
    CorruptInput
        The file can never become a valid movie (see module doc).
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Readiness(False, False, 0, 0.0, "file does not exist")
    size, mtime = int(st.st_size), float(st.st_mtime)
    if size < 16:  # not even a TIFF header: still arriving
        complete, reason, n = False, f"file has {size} bytes" if size else "file is empty", None
    else:
        kind = movie_format(path)
        if kind == "mrc":
            complete, reason, n = _mrc_completeness(path, size)
        else:
            complete, reason, n = _tiff_completeness(path, size, eer=kind == "eer")
    if complete and expected_frames is not None and n is not None and n != expected_frames:
        complete, reason = False, f"{n} of {expected_frames} frames present"
    if previous is not None:
        stable = previous.size_bytes == size and previous.mtime == mtime
    else:
        stable = quiet_s is not None and time.time() - mtime >= quiet_s
    if complete and not stable:
        reason = "complete but changed since the last check" if previous is not None else "not yet seen twice"
    elif complete:
        reason = "ready"
    return Readiness(complete, stable, size, mtime, reason, n)
