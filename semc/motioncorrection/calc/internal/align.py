"""Iterative alignment of a stack against the sum of the other frames (MotionCor scheme).

Every iteration shifts each frame (or group of frames) by the current estimate,
forms the aligned sum, and correlates each group with the sum *minus itself*, so
that a group is never correlated with its own noise. The correlation is computed
on a Fourier-cropped box that holds every frequency the B-factor filter
exp(-B f^2 / 2) leaves above 1e-4 (f in cycles per pixel of the stack, B in
pixel^2, as in MotionCor); its peak is found on the sampled map and refined by
Newton steps on the correlation's Fourier series (`refine_peaks`).
Group updates are interpolated to every frame. Iteration stops when the largest
update is below the tolerance or after ``iterations``.

Frequencies are weighted either by that B-factor filter (MotionCor) or, by
default, by the spectral signal-to-noise ratio of one frame measured from the
stack at every iteration: with the aligned sum T and the frame spectra F_i,
the signal power per frame is S^2 = (|T|^2 - sum |F_i|^2) / (n (n - 1)) (the
cross terms only, so noise does not bias it) and the noise N = sum |F_i|^2 / n
- S^2, both averaged over rings. The weight SSNR / (1 + n SSNR) is the matched
filter for correlating one frame with the sum of the others: it follows the
specimen (particles, ice, carbon, CTF rings) instead of assuming a Gaussian
spectrum; on the simulator's particle-in-ice movies it lowers the trajectory error
against the B-factor filter (0.074 vs 0.097 px mean over six 20-frame movies,
benchmarks/bench_mc_accuracy.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft
from numpy.typing import NDArray

from semc.motioncorrection.calc.internal._jit import NJIT_PARALLEL_OPTIONS
from semc.motioncorrection.calc.internal.fourier import crop_half_spectrum, frequency_axes, stack_ramp_axes
from semc.motioncorrection.calc.internal.peak import peak_near_origin, refine_peaks

logger = logging.getLogger(__name__)

__all__ = ["AlignmentTrace", "SsnrWeights", "correlation_box", "group_cross_spectra", "align_stack"]

_FILTER_FLOOR = 1e-4

#: a ring's SSNR counts only above this many standard deviations of its pure-noise scatter
SSNR_SIGNIFICANCE = 3.0


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
    group_of: NDArray[np.int64], n_groups: int, filt: NDArray[np.float32] | Callable, phase_only: bool,
) -> NDArray[np.complex64]:
    """Filtered cross spectra of each shifted group sum with the rest of the aligned sum.

    Returns (n_groups, cy, cxh): G_g conj(T - G_g) filt, where G_g = sum over the
    group of spectra * ramp_y (x) ramp_x and T = sum of all G_g. ``filt`` may be a
    function of T that returns the filter (weights measured from the aligned sum).

    Raises
    ------
    ValueError
        On inconsistent shapes or dtypes.
    """
    n, cy, cxh = spectra.shape
    if spectra.dtype != np.complex64 or not spectra.flags.c_contiguous:
        raise ValueError("spectra must be C-contiguous complex64")
    if ramp_y.shape != (n, cy) or ramp_x.shape != (n, cxh):
        raise ValueError("ramps must match the spectra")
    if group_of.shape != (n,) or group_of.min() < 0 or group_of.max() >= n_groups:
        raise ValueError("group_of must map every frame to a group index")
    gsum = np.empty((n_groups, cy, cxh), np.complex64)
    total = np.empty((cy, cxh), np.complex64)
    _group_sums(spectra, ramp_y.astype(np.complex64), ramp_x.astype(np.complex64),
                group_of.astype(np.int64), gsum, total)
    weights = filt(total) if callable(filt) else filt
    if weights.shape != (cy, cxh):
        raise ValueError("the filter must match the spectra")
    _cross_products(gsum, total, np.ascontiguousarray(weights, dtype=np.float32), bool(phase_only))
    return gsum


@numba.njit(**NJIT_PARALLEL_OPTIONS)
def _power_sum(spectra, out):  # pragma: no cover - jitted
    n, cy, cxh = spectra.shape
    for y in numba.prange(cy):
        for x in range(cxh):
            out[y, x] = 0.0
        for i in range(n):
            for x in range(cxh):
                v = spectra[i, y, x]
                out[y, x] += v.real * v.real + v.imag * v.imag


class SsnrWeights:
    """Matched-filter weights SSNR / (1 + n SSNR) measured from the aligned sum (module docstring).

    Parameters
    ----------
    spectra
        Shape (n, cy, cxh): the frames' half spectra on the correlation box.
    ring_index
        Shape (cy, cxh) int: ring of every element (rings of one box pixel).
    """

    def __init__(self, spectra: NDArray[np.complex64], ring_index: NDArray[np.int64]) -> None:
        self.n = spectra.shape[0]
        self.rings = ring_index.ravel()
        self.size = int(self.rings.max()) + 1
        self.counts = np.maximum(np.bincount(self.rings, minlength=self.size), 1).astype(np.float64)
        power = np.empty(spectra.shape[1:], dtype=np.float64)
        _power_sum(spectra, power)
        self.frame_power = self._ring_mean(power)
        self.ring_index = ring_index

    def _ring_mean(self, values: NDArray[np.floating]) -> NDArray[np.float64]:
        return np.bincount(self.rings, values.ravel(), minlength=self.size) / self.counts

    def ssnr(self, total: NDArray[np.complex64]) -> NDArray[np.float64]:
        """Per-ring spectral SNR of one frame, from the aligned sum ``total``."""
        n = self.n
        signal = (self._ring_mean(total.real**2 + total.imag**2) - self.frame_power) / (n * (n - 1))
        noise = self.frame_power / n - signal
        ssnr = np.maximum(signal, 0.0) / np.maximum(noise, 1e-30)
        ssnr = np.convolve(ssnr, np.ones(3) / 3.0, mode="same")  # rings are noisy: 3-ring average
        # on pure noise the estimate scatters with sd 1 / sqrt(m n (n - 1)) (m: coefficients averaged);
        # rings not significantly above that carry no measurable signal
        m = np.convolve(self.counts, np.ones(3), mode="same")
        ssnr[ssnr < SSNR_SIGNIFICANCE / np.sqrt(m * n * (n - 1))] = 0.0
        return ssnr

    def __call__(self, total: NDArray[np.complex64]) -> NDArray[np.float32]:
        s = self.ssnr(total)
        w = s / (1.0 + self.n * s)
        peak = w.max()
        w = w / peak if peak > 0 else np.ones_like(w)   # no measurable signal: plain correlation
        return w[self.ring_index].astype(np.float32)


def align_stack(
    spectra: NDArray[np.complex64],
    *,
    image_shape: tuple[int, int],
    bfactor_px2: float,
    iterations: int,
    tolerance_px: float,
    group_size: int = 1,
    phase_only: bool = False,
    weighting: str = "bfactor",
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
    weighting
        ``"bfactor"``: frequencies weighted by the B-factor filter; ``"ssnr"``: by the
        measured spectral SNR (`SsnrWeights`), the B-factor only bounding the box.
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
    if weighting == "ssnr" and n > 2:
        rings = np.rint(np.sqrt(f2) * max(image_shape) / max(scale_y, scale_x)).astype(np.int64)
        filt = SsnrWeights(small, rings)
    elif weighting in ("ssnr", "bfactor"):
        filt = np.exp(-0.5 * bfactor_px2 * f2).astype(np.float32)
    else:
        raise ValueError(f"unknown weighting {weighting!r}")
    motion = np.zeros((n, 2)) if initial_motion_px is None else np.array(initial_motion_px, dtype=np.float64)
    groups = _groups(n, group_size)
    centres = np.array([(a + b - 1) / 2.0 for a, b in groups])
    group_of = np.concatenate([np.full(b - a, k, dtype=np.int64) for k, (a, b) in enumerate(groups)])
    radius = max(box) // 4 if max_shift_px is None else max(1, int(np.ceil(max_shift_px / min(scale_x, scale_y))))
    errors: list[float] = []
    for _ in range(max(1, iterations)):
        ry, rx = stack_ramp_axes(fy, fx, motion)
        prod = group_cross_spectra(small, ramp_y=ry, ramp_x=rx, group_of=group_of, n_groups=len(groups),
                                   filt=filt, phase_only=phase_only)
        cc = scipy.fft.irfft2(prod, s=box, workers=workers)
        upd = peak_near_origin(cc, radius) * np.array([scale_x, scale_y])
        del cc
        upd = refine_peaks(prod, freq_y=fy, freq_x=fx, start_px=upd, max_step_px=2.0 * max(scale_x, scale_y))
        del prod
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
