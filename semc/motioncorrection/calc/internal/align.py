"""Iterative alignment of a stack against the sum of the other frames (MotionCor scheme).

Every iteration shifts each frame (or group of frames) by the current estimate,
forms the aligned sum, and correlates each group with the sum *minus itself*, so
that a group is never correlated with its own noise. The correlation is
B-factor filtered, exp(-B f^2 / 2) with f in cycles per pixel of the stack
(B in pixel^2, as in MotionCor), computed on a Fourier-cropped box that holds
every frequency the filter leaves above 1e-4, and its peak is located with
sub-pixel precision. Group updates are interpolated to every frame. Iteration
stops when the largest update is below the tolerance or after ``iterations``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal._jit import NJIT_PARALLEL_OPTIONS
from semc.motioncorrection.calc.internal.fourier import crop_half_spectrum, frequency_axes
from semc.motioncorrection.calc.internal.peak import peak_near_origin

logger = logging.getLogger(__name__)

__all__ = ["AlignmentTrace", "correlation_box", "group_cross_spectra", "align_stack"]

_FILTER_FLOOR = 1e-4


@dataclass(frozen=True, slots=True)
class AlignmentTrace:
    """Result of one iterative alignment.

    Attributes
    ----------
    motion_px
        Shape (n, 2): (x, y) displacement of each frame's content relative to the
        stack's common frame, in pixels of the aligned images (correction = minus this).
    iteration_errors_px
        Largest group update (pixels) at each iteration, as MotionCor prints it.
    """

    motion_px: NDArray[np.float64]
    iteration_errors_px: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.motion_px.ndim != 2 or self.motion_px.shape[1] != 2:
            raise ValueError(f"motion_px must have shape (n, 2), got {self.motion_px.shape}")


def correlation_box(shape: tuple[int, int], bfactor_px2: float) -> tuple[int, int]:
    """Even (cy, cx) box that keeps the frequencies where exp(-B f^2/2) >= 1e-4."""
    ny, nx = shape
    fmax = 0.5 if bfactor_px2 <= 0 else min(0.5, float(np.sqrt(-2.0 * np.log(_FILTER_FLOOR) / bfactor_px2)))
    out = []
    for n in (ny, nx):
        m = int(np.ceil(2 * fmax * n))
        m = scipy.fft.next_fast_len(m + (m % 2), real=True)
        m += m % 2
        out.append(min(n - (n % 2), max(32, m)))
    return out[0], out[1]


def _groups(n_frames: int, group_size: int) -> list[tuple[int, int]]:
    """Consecutive groups; the leftover frames join the last groups (never the first)."""
    g = max(1, min(group_size, n_frames))
    n_groups = max(1, n_frames // g)
    sizes = [g] * n_groups
    for k in range(n_frames - g * n_groups):
        sizes[n_groups - 1 - (k % max(1, n_groups - 1))] += 1
    bounds, start = [], 0
    for s in sizes:
        bounds.append((start, start + s))
        start += s
    return bounds


def _ramp_axes(fy: NDArray, fx: NDArray, motion: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Separable phase factors (n, cy) and (n, cxh) that move each frame's content by -motion.

    ``fy``, ``fx`` are the frequencies of the box in cycles per pixel of the frames.
    """
    ry = np.exp(2j * np.pi * fy[None, :] * motion[:, 1:2]).astype(np.complex64)
    rx = np.exp(2j * np.pi * fx[None, :] * motion[:, 0:1]).astype(np.complex64)
    return np.ascontiguousarray(ry), np.ascontiguousarray(rx)


@numba.njit(**NJIT_PARALLEL_OPTIONS)
def _group_sums(spectra, ry, rx, group_of, gsum, total):  # pragma: no cover - jitted
    n, cy, cxh = spectra.shape
    for y in numba.prange(cy):
        for x in range(cxh):
            total[y, x] = 0
        for g in range(gsum.shape[0]):
            for x in range(cxh):
                gsum[g, y, x] = 0
        for i in range(n):
            g = group_of[i]
            r = ry[i, y]
            for x in range(cxh):
                a = spectra[i, y, x] * r * rx[i, x]
                gsum[g, y, x] += a
                total[y, x] += a


@numba.njit(**NJIT_PARALLEL_OPTIONS)
def _cross_products(gsum, total, filt, phase_only):  # pragma: no cover - jitted
    ng, cy, cxh = gsum.shape
    for y in numba.prange(cy):
        for g in range(ng):
            for x in range(cxh):
                a = gsum[g, y, x]
                p = a * np.conj(total[y, x] - a)
                if phase_only:
                    m = abs(p)
                    p = p / m if m > 1e-30 else 0j
                gsum[g, y, x] = p * filt[y, x]


def group_cross_spectra(
    spectra: NDArray[np.complex64], *, ramp_y: NDArray[np.complex64], ramp_x: NDArray[np.complex64],
    group_of: NDArray[np.int64], n_groups: int, filt: NDArray[np.float32], phase_only: bool,
) -> NDArray[np.complex64]:
    """Filtered cross spectra of each shifted group sum with the rest of the aligned sum.

    Returns (n_groups, cy, cxh): G_g conj(T - G_g) filt, where G_g = sum over the
    group of spectra * ramp_y (x) ramp_x and T = sum of all G_g.

    Raises
    ------
    ValueError
        On inconsistent shapes or dtypes.
    """
    n, cy, cxh = spectra.shape
    if spectra.dtype != np.complex64 or not spectra.flags.c_contiguous:
        raise ValueError("spectra must be C-contiguous complex64")
    if ramp_y.shape != (n, cy) or ramp_x.shape != (n, cxh) or filt.shape != (cy, cxh):
        raise ValueError("ramps and filter must match the spectra")
    if group_of.shape != (n,) or group_of.min() < 0 or group_of.max() >= n_groups:
        raise ValueError("group_of must map every frame to a group index")
    gsum = np.empty((n_groups, cy, cxh), np.complex64)
    total = np.empty((cy, cxh), np.complex64)
    _group_sums(spectra, ramp_y.astype(np.complex64), ramp_x.astype(np.complex64),
                group_of.astype(np.int64), gsum, total)
    _cross_products(gsum, total, np.ascontiguousarray(filt, dtype=np.float32), bool(phase_only))
    return gsum


def align_stack(
    spectra: NDArray[np.complex64],
    *,
    image_shape: tuple[int, int],
    bfactor_px2: float,
    iterations: int,
    tolerance_px: float,
    group_size: int = 1,
    phase_only: bool = False,
    initial_motion_px: NDArray[np.float64] | None = None,
    max_shift_px: float | None = None,
    workers: int = 1,
) -> AlignmentTrace:
    """Align a stack of half spectra iteratively (see the module docstring).

    Parameters
    ----------
    spectra
        Shape (n, ny, nx//2+1): ``rfft2`` of the frames (mean removed, tapered),
        or those spectra already cropped to ``correlation_box(image_shape, B)``.
    image_shape
        (ny, nx) of the frames.
    bfactor_px2
        B-factor of the correlation filter, pixel^2 of these frames.
    iterations, tolerance_px
        Stop after this many iterations or when the largest update < tolerance.
    group_size
        Frames summed per group (>= 1).
    phase_only
        Use phase correlation (|C| normalised to 1) instead of cross correlation.
    initial_motion_px
        Shape (n, 2) start estimate; zeros if None.
    max_shift_px
        Largest update searched per iteration (pixels); a quarter of the box if None.
    workers
        ``scipy.fft`` workers.

    Returns
    -------
    AlignmentTrace

    Raises
    ------
    ValueError
        On inconsistent shapes or fewer than two frames.
    """
    n = spectra.shape[0]
    box = correlation_box(image_shape, bfactor_px2)
    full = (image_shape[0], image_shape[1] // 2 + 1)
    if spectra.ndim != 3 or spectra.shape[1:] not in (full, (box[0], box[1] // 2 + 1)):
        raise ValueError(f"spectra shape {spectra.shape} does not match image_shape {image_shape}")
    if n < 2:
        raise ValueError("alignment needs at least two frames")
    small = crop_half_spectrum(spectra, box)
    small[:, 0, 0] = 0
    fy, fx = frequency_axes(*box)
    scale_y, scale_x = image_shape[0] / box[0], image_shape[1] / box[1]
    fy, fx = fy / scale_y, fx / scale_x
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    filt = np.exp(-0.5 * bfactor_px2 * f2).astype(np.float32)
    motion = np.zeros((n, 2)) if initial_motion_px is None else np.array(initial_motion_px, dtype=np.float64)
    groups = _groups(n, group_size)
    centres = np.array([(a + b - 1) / 2.0 for a, b in groups])
    group_of = np.concatenate([np.full(b - a, k, dtype=np.int64) for k, (a, b) in enumerate(groups)])
    radius = max(box) // 4 if max_shift_px is None else max(1, int(np.ceil(max_shift_px / min(scale_x, scale_y))))
    errors: list[float] = []
    for _ in range(max(1, iterations)):
        ry, rx = _ramp_axes(fy, fx, motion)
        prod = group_cross_spectra(small, ramp_y=ry, ramp_x=rx, group_of=group_of, n_groups=len(groups),
                                   filt=filt, phase_only=phase_only)
        cc = scipy.fft.irfft2(prod, s=box, workers=workers)
        del prod
        upd = peak_near_origin(cc, radius) * np.array([scale_x, scale_y])
        if len(groups) == 1:
            frame_upd = np.repeat(upd, n, axis=0)
        else:
            t = np.arange(n)
            frame_upd = np.stack([np.interp(t, centres, upd[:, k]) for k in (0, 1)], axis=1)
        motion += frame_upd
        err = float(np.max(np.hypot(upd[:, 0], upd[:, 1])))
        errors.append(err)
        if err < tolerance_px:
            break
    return AlignmentTrace(motion_px=motion, iteration_errors_px=tuple(errors))
