"""Text that ``semc-motioncor2`` prints and writes, in MotionCor2's formats (pure functions).

Shifts are MotionCor's: the correction applied to each frame (minus the content
motion), in pixels of the input movie. MotionCor2 1.6.4 prints them relative to
the first frame in a ``Frame x Shift y Shift`` table; 1.5.0 (and MotionCor3)
print ``...... Frame (  n) shift: x y`` relative to the reference frame under
``Full-frame alignment shift``, which is what RELION 3.1 parses.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LOG_FORMATS",
    "format_iterations",
    "format_global_shifts",
    "format_patch_progress",
    "format_full_log",
    "format_patch_patch_log",
    "format_patch_frame_log",
]

LOG_FORMATS = ("1.6.4", "1.5.0")


def format_iterations(errors_px: tuple[float, ...]) -> str:
    """``Iteration  k  Error:  e`` lines."""
    return "".join(f"Iteration {k:2d}  Error: {e:9.3f}\n" for k, e in enumerate(errors_px, 1))


def format_global_shifts(shifts_px: NDArray[np.floating], *, reference_frame: int, version: str) -> str:
    """The whole-frame shift table of MotionCor2 ``version`` ("1.6.4" or "1.5.0").

    Parameters
    ----------
    shifts_px
        Shape (n, 2): per-frame (x, y) corrections, any reference.
    reference_frame
        0-based reference frame (zero row of the 1.5.0 table).
    version
        One of `LOG_FORMATS`.

    Raises
    ------
    ValueError
        On an unknown version.
    """
    s = np.asarray(shifts_px, dtype=np.float64)
    if version == "1.6.4":
        rel = s - s[0]
        rows = "".join(f"{i:5d} {x:10.3f} {y:10.3f}\n" for i, (x, y) in enumerate(rel, 1))
        return "Full-frame alignment\n  Frame   x Shift   y Shift\n" + rows
    if version == "1.5.0":
        rel = s - s[reference_frame]
        rows = "".join(f"...... Frame ({i:3d}) shift: {x:9.3f}  {y:9.3f}\n" for i, (x, y) in enumerate(rel, 1))
        return "Full-frame alignment shift\n" + rows
    raise ValueError(f"unknown log format {version!r}; use one of {LOG_FORMATS}")


def format_patch_progress(errors_px: tuple[tuple[float, ...], ...]) -> str:
    """``Align patch i  j left`` blocks with their iteration errors."""
    n = len(errors_px)
    out = ["Start to align patches.\n"]
    for i, errs in enumerate(errors_px, 1):
        out.append(f"Align patch {i}  {n - i} left\n{format_iterations(errs)}\n")
    return "".join(out)


def format_full_log(shifts_px: NDArray[np.floating], *, first_frame: int) -> str:
    """``-Full.log``: one row per processed frame, ``frame x y`` (1-based movie frame, corrections)."""
    s = np.asarray(shifts_px, dtype=np.float64)
    head = "# full-frame alignment: frame, x shift, y shift (pixels, correction)\n"
    return head + "".join(f"{first_frame + i + 1:6d} {x:10.3f} {y:10.3f}\n" for i, (x, y) in enumerate(s))


def format_patch_patch_log(
    *, centres_px: NDArray[np.floating], measured_px: NDArray[np.floating],
    fitted_px: NDArray[np.floating],
) -> str:
    """``-Patch-Patch.log``: rows ``frame x y shift_x shift_y fit_x fit_y`` per patch and frame.

    ``measured_px`` and ``fitted_px`` have shape (p, n, 2) and hold the local
    (residual to the whole-frame) corrections; frames are 1-based within the
    processed frames, which is how RELION 3.1 reads this file.
    """
    head = ("# local motion per patch: frame, patch centre x, y (pixels),"
            " measured x, y, fitted x, y (pixels, correction)\n")
    rows = []
    for p, (cx, cy) in enumerate(np.asarray(centres_px)):
        for i in range(measured_px.shape[1]):
            mx, my = measured_px[p, i]
            fx, fy = fitted_px[p, i]
            rows.append(f"{i + 1:4d} {cx:9.2f} {cy:9.2f} {mx:9.3f} {my:9.3f} {fx:9.3f} {fy:9.3f}\n")
    return head + "".join(rows)


def format_patch_frame_log(
    *, global_shifts_px: NDArray[np.floating], fitted_px: NDArray[np.floating], first_frame: int
) -> str:
    """``-Patch-Frame.log``: per frame the whole-frame shift and the RMS local correction over patches."""
    g = np.asarray(global_shifts_px, dtype=np.float64)
    f = np.asarray(fitted_px, dtype=np.float64)
    rms = np.sqrt(np.mean(np.sum(f * f, axis=2), axis=0)) if f.size else np.zeros(len(g))
    head = "# frame, whole-frame x, y shift, RMS local correction (pixels)\n"
    return head + "".join(
        f"{first_frame + i + 1:6d} {x:10.3f} {y:10.3f} {r:9.3f}\n" for i, ((x, y), r) in enumerate(zip(g, rms))
    )
