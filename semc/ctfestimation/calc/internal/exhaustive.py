"""The exhaustive brute-force search of "Slower, more exhaustive search?" (CTFFIND 4.1's slower search).

CTFFIND 4.1, when asked for the slower search, skips the 1D search on the rotational
average and scans defocus 1 and defocus 2 over the whole user range against the 2D
spectrum before its conjugate-gradient refinement (``algorithms.md`` §3.2). This is the
same idea over all three astigmatic parameters: every CTF with both defoci inside
[min defocus, max defocus] and an astigmatism up to ``MAX_ASTIGMATISM_ANGSTROM`` lies
within half a step (in each coordinate) of a scored grid point, azimuth included, so a large astigmatism that smears the rotational average
cannot lure the search into a wrong minimum.

The grid is laid out in the smooth parametrisation of :mod:`model` (mean, x, y), which
is (defocus 1, defocus 2, azimuth) in other coordinates but uniform in phase error:
one step of any coordinate moves chi by at most pi / ``_STEP_DIVISOR`` at the edge of
the search band, so no CTF of the range lies further than about half a step from a
grid point. The search band ends at the fit's maximum resolution unless the grid
would exceed ``_BUDGET`` pixel-candidate evaluations; then the step grows and the
band shrinks with it (lower resolution, wider score peaks), down to ``_MIN_BAND``
of the minimum resolution. The best few local maxima of the grid are returned for
refinement (:func:`semc.ctfestimation.calc.internal.fit.fit_spectrum`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from semc.ctfestimation.calc.internal._kernels import _grid_sums_kernel
from semc.ctfestimation.calc.internal.model import CtfOptics
from semc.ctfestimation.calc.internal.search import FitPixels, fit_pixels_select

__all__ = ["MAX_ASTIGMATISM_ANGSTROM", "ExhaustiveGrid", "GridPeak", "exhaustive_grid_search", "grid_scores", "grid_step_for_band"]

logger = logging.getLogger(__name__)

#: largest astigmatism (defocus 1 - defocus 2, Å) the exhaustive grid covers
MAX_ASTIGMATISM_ANGSTROM = 10000.0
#: grid step: chi moves by pi / _STEP_DIVISOR per step at the band edge
_STEP_DIVISOR = 5.0
#: pixels of the search band that are scored (every k-th, see FitPixels.subset)
_GRID_PIXELS = 3000
#: pixel x candidate evaluations allowed (about 1 s on one core)
_BUDGET = 1.5e9
#: the search band never ends below min_resolution / _MIN_BAND (Å)
_MIN_BAND = 2.0


@dataclass(frozen=True, slots=True)
class GridPeak:
    """A local maximum of the grid: (mean, x, y) in Å, phase shift in rad, restrained score."""

    mean_angstrom: float
    x_angstrom: float
    y_angstrom: float
    phase_shift_radian: float
    score: float


@dataclass(frozen=True, slots=True, eq=False)
class ExhaustiveGrid:
    """The scanned grid and its best local maxima.

    Attributes
    ----------
    peaks
        Best local maxima, best first.
    pixels
        The search-band pixels the grid was scored on (for a first refinement at that band).
    step_angstrom
        Grid step of mean, x and y (Å).
    band_angstrom
        High-resolution end of the search band (Å).
    n_candidates
        Number of CTFs scored.
    """

    peaks: list[GridPeak]
    pixels: FitPixels
    step_angstrom: float
    band_angstrom: float
    n_candidates: int


def grid_step_for_band(optics: CtfOptics, band_angstrom: float) -> float:
    """Grid step (Å) for which chi moves by pi / _STEP_DIVISOR at 1 / band_angstrom."""
    return band_angstrom**2 / (_STEP_DIVISOR * optics.wavelength_angstrom)


def _layout(*, span: float, reach: float, step: float, known_xy: tuple[float, float] | None):
    """Grid rows (x, y), their valid column ranges and the rows' shape (for peak finding).

    Column j is mean = min_defocus + (j - 1) * step, from one step below the range to at least
    one above it. A row (x, y) of half-astigmatism h is valid where both defoci, mean -+ h,
    lie inside the range widened by 1.5 steps, and h <= reach + 1.5 steps: rounding any CTF of
    the range to its nearest grid point (half a step in each coordinate) changes h by at most
    0.71 steps, so that point is always on the grid.
    """
    margin = 1.5 * step
    n_means = math.ceil(span / step - 1e-9) + 3
    if known_xy is not None:
        x, y = np.array([known_xy[0]]), np.array([known_xy[1]])
        shape = (1, 1)
    else:
        half = math.ceil(reach / step - 1e-9) + 1
        axis = np.arange(-half, half + 1) * step
        xx, yy = np.meshgrid(axis, axis, indexing="ij")
        x, y, shape = xx.ravel(), yy.ravel(), xx.shape
    h = np.hypot(x, y)
    # mean - h >= min - margin  <=>  (j - 1) step >= h - margin;  mean + h <= max + margin
    first = np.maximum(np.ceil((h - margin) / step + 1.0 - 1e-9), 0).astype(np.int64)
    stop = np.minimum(np.floor((span - h + margin) / step + 1.0 + 1e-9).astype(np.int64) + 1, n_means)
    if known_xy is None:
        stop = np.where(h <= reach + margin, stop, first)
    return x, y, first, np.maximum(stop, first), n_means, shape


def grid_scores(
    pixels: FitPixels,
    *,
    optics: CtfOptics,
    mean_first_angstrom: float,
    step_angstrom: float,
    n_means: int,
    x_angstrom: np.ndarray,
    y_angstrom: np.ndarray,
    first: np.ndarray,
    stop: np.ndarray,
    phase_shift_radian: float,
) -> np.ndarray:
    """(rows, n_means) Pearson scores of rows (x, y) x means mean_first + j * step; -inf outside [first, stop)."""
    base = pixels.base(optics) + phase_shift_radian
    sums = _grid_sums_kernel(
        pixels.g2, pixels.g2c, pixels.g2s, base, pixels.data, optics.defocus_coefficient,
        float(mean_first_angstrom), float(step_angstrom), int(n_means),
        np.ascontiguousarray(x_angstrom, dtype=np.float64), np.ascontiguousarray(y_angstrom, dtype=np.float64),
        np.ascontiguousarray(first, dtype=np.int64), np.ascontiguousarray(stop, dtype=np.int64),
    )
    n = max(pixels.g2.size, 1)
    variance = sums[..., 1] - sums[..., 0] ** 2 / n
    ok = (variance > 1e-12) & (pixels.data_norm > 0)
    scores = np.where(ok, sums[..., 2] / (pixels.data_norm * np.sqrt(np.where(ok, variance, 1.0))), 0.0)
    columns = np.arange(n_means)
    valid = (columns >= first[:, None]) & (columns < stop[:, None])
    return np.where(valid, scores, -np.inf)


def exhaustive_grid_search(
    filtered: np.ndarray,
    *,
    optics: CtfOptics,
    spectrum_pixel_size_angstrom: float,
    min_resolution_angstrom: float,
    max_resolution_angstrom: float,
    min_defocus_angstrom: float,
    max_defocus_angstrom: float,
    phases_radian: np.ndarray,
    astigmatism_restraint_angstrom: float | None = None,
    known_xy_angstrom: tuple[float, float] | None = None,
    keep: int = 8,
) -> ExhaustiveGrid:
    """Score every CTF of the defocus range on a grid; return the best local maxima.

    Parameters
    ----------
    filtered
        Centred, background-subtracted (box, box) spectrum.
    optics
        Voltage, Cs and amplitude contrast.
    spectrum_pixel_size_angstrom
        Pixel size of the spectrum (Å).
    min_resolution_angstrom, max_resolution_angstrom
        Fit band (Å); the search band may end below the maximum resolution (module docstring).
    min_defocus_angstrom, max_defocus_angstrom
        Both defoci of every scored CTF lie in this range (Å).
    phases_radian
        Additional phase shifts to scan (one value when not searched).
    astigmatism_restraint_angstrom
        CTFFIND's restraint (subtracted from the score as in the refinement); ``None`` for none.
    known_xy_angstrom
        Known astigmatism as (x, y) (Å): only the mean defocus (and phase) is scanned.
    keep
        Number of local maxima returned.

    Returns
    -------
    ExhaustiveGrid
        The peaks (best first) and the grid's pixels, step and band.
    """
    span = max(0.0, max_defocus_angstrom - min_defocus_angstrom)
    reach = min(0.5 * span, 0.5 * MAX_ASTIGMATISM_ANGSTROM)
    band = max_resolution_angstrom
    lowest_band = min_resolution_angstrom / _MIN_BAND
    step = grid_step_for_band(optics, band)
    phases = np.atleast_1d(np.asarray(phases_radian, dtype=np.float64))
    while True:
        x, y, first, stop, n_means, shape = _layout(span=span, reach=reach, step=step, known_xy=known_xy_angstrom)
        n_candidates = int((stop - first).sum()) * phases.size
        if n_candidates * _GRID_PIXELS <= _BUDGET or band >= lowest_band:
            break
        step *= min(2.0, (n_candidates * _GRID_PIXELS / _BUDGET) ** (1.0 / 3.0) * 1.02)
        band = min(lowest_band, math.sqrt(step * _STEP_DIVISOR * optics.wavelength_angstrom))
        step = max(step, grid_step_for_band(optics, band))
    pixels = fit_pixels_select(
        filtered, pixel_size_angstrom=spectrum_pixel_size_angstrom,
        min_resolution_angstrom=min_resolution_angstrom, max_resolution_angstrom=band,
    ).subset(_GRID_PIXELS)
    penalty = np.zeros(x.size)
    if astigmatism_restraint_angstrom is not None:
        penalty = 4.0 * (x**2 + y**2) / (2.0 * astigmatism_restraint_angstrom**2) / max(pixels.g2.size, 1)
    mean_first = min_defocus_angstrom - step
    scores = np.stack([
        grid_scores(pixels, optics=optics, mean_first_angstrom=mean_first, step_angstrom=step, n_means=n_means,
                    x_angstrom=x, y_angstrom=y, first=first, stop=stop, phase_shift_radian=float(p)) - penalty[:, None]
        for p in phases
    ]).reshape(phases.size, *shape, n_means)
    local = scipy.ndimage.maximum_filter(scores, size=3, mode="constant", cval=-np.inf)
    candidates = np.flatnonzero(np.isfinite(scores) & (scores >= local))
    best = candidates[np.argsort(scores.ravel()[candidates])[::-1][:keep]]
    peaks = []
    for index in best:
        p, *row, j = np.unravel_index(index, scores.shape)
        r = int(np.ravel_multi_index(tuple(row), shape))
        peaks.append(GridPeak(float(mean_first + j * step), float(x[r]), float(y[r]), float(phases[p]),
                              float(scores.ravel()[index])))
    logger.debug("exhaustive grid: %d CTFs, step %.0f Å, band to %.1f Å, best %s", n_candidates, step, band,
                 peaks[0] if peaks else None)
    return ExhaustiveGrid(peaks=peaks, pixels=pixels, step_angstrom=step, band_angstrom=band, n_candidates=n_candidates)
