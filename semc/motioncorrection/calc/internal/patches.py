"""Patch (local) alignment on the binned alignment stack.

Patches of size (image / patches) * (1 + overlap) sit on a regular grid. Each
patch window follows the content along the global trajectory (the window moves
by the rounded global motion, the fractional part is applied as a phase ramp),
is tapered, and is aligned with the same iterative routine as the full frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal.align import align_stack

logger = logging.getLogger(__name__)

__all__ = ["PatchMeasurements", "patch_layout", "taper_window", "align_patches"]


@dataclass(frozen=True, slots=True)
class PatchMeasurements:
    """Measured motion of every patch in every frame, in pixels of the binned stack.

    Attributes
    ----------
    centres_px
        Shape (p, 2): (x, y) patch centres in the binned stack.
    motion_px
        Shape (p, n, 2): (x, y) content motion of each patch in each frame.
    iteration_errors_px
        Per patch, the largest update at each iteration.
    """

    centres_px: NDArray[np.float64]
    motion_px: NDArray[np.float64]
    iteration_errors_px: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if self.motion_px.ndim != 3 or self.motion_px.shape[0] != self.centres_px.shape[0]:
            raise ValueError("motion_px must have shape (patches, frames, 2)")


def patch_layout(
    shape: tuple[int, int], patches_xy: tuple[int, int], overlap_percent: float = 0.0
) -> tuple[NDArray[np.float64], tuple[int, int]]:
    """Patch centres (p, 2) as (x, y), row-major from the top-left, and the even patch size (py, px)."""
    ny, nx = shape
    npx, npy = patches_xy
    if npx < 1 or npy < 1:
        raise ValueError(f"patches must be >= 1 in each direction, got {patches_xy}")
    f = 1.0 + max(0.0, overlap_percent) / 100.0
    py = min(ny, int(ny / npy * f)) // 2 * 2
    px = min(nx, int(nx / npx * f)) // 2 * 2
    cy = (np.arange(npy) + 0.5) * ny / npy
    cx = (np.arange(npx) + 0.5) * nx / npx
    centres = np.array([(x, y) for y in cy for x in cx], dtype=np.float64)
    return centres, (py, px)


def taper_window(shape: tuple[int, int], edge_fraction: float = 0.1) -> NDArray[np.float32]:
    """Separable cosine (Tukey) taper: 1 inside, falling to 0 over ``edge_fraction`` of each side."""
    out = []
    for n in shape:
        w = np.ones(n)
        m = max(1, int(round(edge_fraction * n)))
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
        w[:m] = ramp
        w[n - m :] = ramp[::-1]
        out.append(w)
    return (out[0][:, None] * out[1][None, :]).astype(np.float32)


def _cut(stack, y0, x0, size):
    py, px = size
    n = stack.shape[0]
    out = np.empty((n, py, px), dtype=np.float32)
    for i in range(n):
        out[i] = stack[i, y0[i] : y0[i] + py, x0[i] : x0[i] + px]
    return out


def align_patches(
    stack: NDArray[np.float32],
    *,
    global_motion_px: NDArray[np.float64],
    patches_xy: tuple[int, int],
    overlap_percent: float,
    bfactor_px2: float,
    iterations: int,
    tolerance_px: float,
    group_size: int,
    phase_only: bool = False,
    weighting: str = "bfactor",
    workers: int = 1,
) -> PatchMeasurements:
    """Measure the motion of each patch (see the module docstring).

    Parameters
    ----------
    stack
        Shape (n, ny, nx): the binned, gain-corrected frames.
    global_motion_px
        Shape (n, 2): global content motion in binned pixels.
    patches_xy
        (columns, rows) of patches.

    Returns
    -------
    PatchMeasurements

    Raises
    ------
    ValueError
        If shapes disagree.
    """
    n, ny, nx = stack.shape
    if global_motion_px.shape != (n, 2):
        raise ValueError(f"global_motion_px must have shape ({n}, 2)")
    centres, (py, px) = patch_layout((ny, nx), patches_xy, overlap_percent)
    taper = taper_window((py, px))
    rounded = np.round(global_motion_px).astype(np.int64)
    motions, errors = [], []
    for cx, cy in centres:
        x0 = np.clip(int(round(cx - px / 2)) + rounded[:, 0], 0, nx - px)
        y0 = np.clip(int(round(cy - py / 2)) + rounded[:, 1], 0, ny - py)
        cut = _cut(stack, y0, x0, (py, px))
        cut -= cut.mean(axis=(1, 2), keepdims=True)
        cut *= taper
        spectra = scipy.fft.rfft2(cut, workers=workers)
        offset = np.stack([x0 - (int(round(cx - px / 2))), y0 - int(round(cy - py / 2))], axis=1)
        init = global_motion_px - offset
        trace = align_stack(
            spectra,
            image_shape=(py, px),
            bfactor_px2=bfactor_px2,
            iterations=iterations,
            tolerance_px=tolerance_px,
            group_size=group_size,
            phase_only=phase_only,
            weighting=weighting,
            initial_motion_px=init,
            max_shift_px=max(4.0, 0.1 * min(py, px)),
            workers=workers,
        )
        motions.append(trace.motion_px + offset)
        errors.append(trace.iteration_errors_px)
    return PatchMeasurements(
        centres_px=centres, motion_px=np.stack(motions), iteration_errors_px=tuple(errors)
    )
