"""Fit CTFFIND's parameters to a background-subtracted spectrum: 1D search, 2D grid, refinement.

Default search: a 1D brute force over defocus (and phase shift) on the rotational average, a grid
of astigmatism around it, then a multi-start Nelder-Mead cascade on more and more spectrum pixels.
With ``exhaustive_search`` ("Slower, more exhaustive search?") the 1D search is skipped: the full
(mean, x, y[, phase]) grid of :mod:`exhaustive` is scored against the 2D spectrum, its best local
maxima are refined at the grid's band, then by the same cascade. A refined phase shift is brought
back into [min, min + pi), the interval |CTF| cannot tell apart.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from semc.ctfestimation.calc.internal.exhaustive import exhaustive_grid_search
from semc.ctfestimation.calc.internal.model import CtfOptics, xy_from_defoci
from semc.ctfestimation.calc.internal.search import (
    FitPixels,
    PixelScorer,
    fit_pixels_select,
    radial_profile,
    score_batch,
    search_defocus_1d,
)
from semc.ctfestimation.types import CtfSearchParameters

__all__ = ["SpectrumFit", "fit_spectrum"]

logger = logging.getLogger(__name__)
_COARSE_PIXELS = 4000
_MEDIUM_PIXELS = 12000
_STARTS = 5
_MAX_HALF_ASTIGMATISM_ANGSTROM = 1500.0


@dataclass(frozen=True, slots=True)
class SpectrumFit:
    """Fitted parameters in the smooth parametrisation (Å, Å, Å, rad) and the unpenalised score.

    ``initial`` is the best point of the initial search, before refinement:
    (mean, x, y, phase shift, score of that search), or ``None`` when not recorded.
    """

    mean_angstrom: float
    x_angstrom: float
    y_angstrom: float
    phase_shift_radian: float
    score: float
    initial: tuple[float, float, float, float, float] | None = None


def _phases(params: CtfSearchParameters) -> np.ndarray:
    if not params.find_phase_shift:
        return np.zeros(1)
    count = math.floor((params.max_phase_shift_radian - params.min_phase_shift_radian) / params.phase_shift_step_radian + 1e-9) + 1
    return params.min_phase_shift_radian + params.phase_shift_step_radian * np.arange(count)


def _defoci(params: CtfSearchParameters) -> np.ndarray:
    count = math.floor((params.max_defocus_angstrom - params.min_defocus_angstrom) / params.defocus_step_angstrom + 1e-9) + 1
    return params.min_defocus_angstrom + params.defocus_step_angstrom * np.arange(count)


def _restraint(params: CtfSearchParameters, n_pixels: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CTFFIND's astigmatism restraint, a^2 / (2 tol^2) / n, with a = 2*sqrt(x^2 + y^2)."""
    if params.astigmatism_restraint_angstrom is None:
        return np.zeros(np.broadcast(x, y).shape)
    astigmatism2 = 4.0 * (np.asarray(x) ** 2 + np.asarray(y) ** 2)
    return astigmatism2 / (2.0 * params.astigmatism_restraint_angstrom**2) / n_pixels


def _grid_search(
    pixels: FitPixels, *, params: CtfSearchParameters, optics: CtfOptics, mean: float, phase: float, g2_max: float
) -> list[tuple[float, float, float, float, float]]:
    """The best few (mean, x, y, phase, score) on a grid of astigmatism around the 1D mean (coarse pixel subset)."""
    coarse = pixels.subset(_COARSE_PIXELS)
    step = float(np.clip(1.0 / (4.0 * optics.wavelength_angstrom * g2_max), 20.0, 200.0))
    reach = _MAX_HALF_ASTIGMATISM_ANGSTROM
    if params.astigmatism_restraint_angstrom is not None:
        reach = min(reach, max(4.0 * params.astigmatism_restraint_angstrom, 4.0 * step))
    axis = np.arange(-math.floor(reach / step), math.floor(reach / step) + 1) * step
    m, x, y = (a.ravel() for a in np.meshgrid(np.array([mean]), axis, axis, indexing="ij"))
    scores = score_batch(coarse, optics=optics, mean_angstrom=m, x_angstrom=x, y_angstrom=y, phase_shift_radian=phase)
    scores = scores - _restraint(params, coarse.g2.size, x, y)
    order = np.argsort(scores)[::-1][:_STARTS]
    return [(float(m[i]), float(x[i]), float(y[i]), phase, float(scores[i])) for i in order]


def _refine(
    pixels: FitPixels,
    *,
    params: CtfSearchParameters,
    optics: CtfOptics,
    start: tuple[float, float, float, float],
    free: tuple[bool, ...],
    tolerance_steps: float = 0.02,
    simplex_angstrom: float | None = None,
) -> SpectrumFit:
    """Nelder-Mead on the free subset of (mean, x, y, phase); ``tolerance_steps`` in units of the initial steps.

    ``simplex_angstrom``: size of the initial simplex along mean, x and y (Å; a quarter of the
    phase step along the phase), for a start that may lie that far from the optimum; by default
    scipy's tiny simplex, which expands as needed.
    """
    start_array = np.asarray(start, dtype=np.float64)
    scales = np.array([0.5 * params.defocus_step_angstrom, 30.0, 30.0, 0.1])
    free_index = np.flatnonzero(free)
    scorer = PixelScorer(pixels, optics)
    tolerance = params.astigmatism_restraint_angstrom

    def full(v: np.ndarray) -> np.ndarray:
        values = start_array.copy()
        values[free_index] = start_array[free_index] + v * scales[free_index]
        return values

    def negative(v: np.ndarray) -> float:
        mean, x, y, phase = full(v)
        penalty = 0.0 if tolerance is None else 4.0 * (x * x + y * y) / (2.0 * tolerance**2) / scorer.n_pixels
        return penalty - scorer.one(mean, x, y, phase)

    options = {"xatol": tolerance_steps, "fatol": 1e-7, "maxiter": 400 * max(1, free_index.size), "adaptive": free_index.size > 2}
    if simplex_angstrom is not None:
        size = np.array([simplex_angstrom] * 3 + [0.25 * params.phase_shift_step_radian]) / scales
        options["initial_simplex"] = np.vstack([np.zeros(free_index.size), np.diag(size[free_index])])
    result = scipy.optimize.minimize(negative, np.zeros(free_index.size), method="Nelder-Mead", options=options)
    mean, x, y, phase = full(result.x)
    return SpectrumFit(float(mean), float(x), float(y), float(phase), scorer.one(mean, x, y, phase))


def fit_spectrum(filtered: np.ndarray, *, params: CtfSearchParameters, spectrum_pixel_size_angstrom: float) -> SpectrumFit:
    """Fit a centred, background-subtracted (box, box) spectrum.

    Parameters
    ----------
    filtered
        Output of :func:`spectrum_background_subtract`.
    params
        Search settings (resolution band, defocus range, astigmatism and phase options).
    spectrum_pixel_size_angstrom
        Pixel size of the spectrum (Å).

    Returns
    -------
    SpectrumFit
        Best parameters and their Pearson score.
    """
    optics = CtfOptics(params.voltage_kv, params.spherical_aberration_mm, params.amplitude_contrast)
    max_res = max(params.max_resolution_angstrom, 2.0 * spectrum_pixel_size_angstrom)
    pixels = fit_pixels_select(
        filtered, pixel_size_angstrom=spectrum_pixel_size_angstrom,
        min_resolution_angstrom=params.min_resolution_angstrom, max_resolution_angstrom=max_res,
    )
    if params.exhaustive_search:
        return _wrap_phase(_fit_exhaustive(filtered, pixels, params=params, optics=optics,
                                           spectrum_pixel_size_angstrom=spectrum_pixel_size_angstrom, max_res=max_res), params)
    frequency, profile = radial_profile(filtered, pixel_size_angstrom=spectrum_pixel_size_angstrom)
    band = (frequency >= 1.0 / params.min_resolution_angstrom) & (frequency <= 1.0 / max_res)
    mean, phase, score_1d = search_defocus_1d(
        frequency=frequency[band], profile=profile[band], optics=optics,
        defoci_angstrom=_defoci(params), phases_radian=_phases(params),
    )
    logger.debug("1D search: defocus %.1f Å, phase %.3f rad, score %.4f", mean, phase, score_1d)
    if params.known_astigmatism_angstrom is not None:
        _, x, y = xy_from_defoci(
            mean + 0.5 * params.known_astigmatism_angstrom, mean - 0.5 * params.known_astigmatism_angstrom,
            params.known_astigmatism_azimuth_degree,
        )
        best = _refine(pixels, params=params, optics=optics, start=(mean, x, y, phase), free=(True, False, False, params.find_phase_shift))
        return _wrap_phase(dataclasses.replace(best, initial=(mean, x, y, phase, score_1d)), params)
    starts = _grid_search(pixels, params=params, optics=optics, mean=mean, phase=phase, g2_max=max_res**-2)
    best = _cascade(pixels, params=params, optics=optics, starts=[s[:4] for s in starts], free=(True, True, True, params.find_phase_shift))
    return _wrap_phase(dataclasses.replace(best, initial=starts[0]), params)


def _wrap_phase(fit: SpectrumFit, params: CtfSearchParameters) -> SpectrumFit:
    """Bring a refined phase shift back into [min, min + pi): |CTF| is the same for phi and phi + pi."""
    if not params.find_phase_shift:
        return fit
    low = params.min_phase_shift_radian
    return dataclasses.replace(fit, phase_shift_radian=low + (fit.phase_shift_radian - low) % math.pi)


def _known_xy(params: CtfSearchParameters) -> tuple[float, float] | None:
    if params.known_astigmatism_angstrom is None:
        return None
    _, x, y = xy_from_defoci(0.5 * params.known_astigmatism_angstrom, -0.5 * params.known_astigmatism_angstrom,
                             params.known_astigmatism_azimuth_degree)
    return x, y


def _cascade(
    pixels: FitPixels, *, params: CtfSearchParameters, optics: CtfOptics, starts: list[tuple[float, float, float, float]],
    free: tuple[bool, ...],
) -> SpectrumFit:
    """Refine the starts on more and more pixels, keeping the best; two final passes on all pixels."""
    for size, keep, tolerance in ((_COARSE_PIXELS, 2, 0.1), (_MEDIUM_PIXELS, 1, 0.05)):
        subset = pixels.subset(size)
        refined = [_refine(subset, params=params, optics=optics, start=s, free=free, tolerance_steps=tolerance) for s in starts]
        refined.sort(key=lambda c: c.score, reverse=True)
        starts = [(c.mean_angstrom, c.x_angstrom, c.y_angstrom, c.phase_shift_radian) for c in refined[:keep]]
    best = _refine(pixels, params=params, optics=optics, start=starts[0], free=free)
    # one restart: Nelder-Mead can stop early on the shallow astigmatism valley
    again = _refine(pixels, params=params, optics=optics, start=(best.mean_angstrom, best.x_angstrom, best.y_angstrom, best.phase_shift_radian), free=free)
    return again if again.score >= best.score else best


def _fit_exhaustive(
    filtered: np.ndarray, pixels: FitPixels, *, params: CtfSearchParameters, optics: CtfOptics, spectrum_pixel_size_angstrom: float,
    max_res: float,
) -> SpectrumFit:
    """"Slower, more exhaustive search": the full grid of :mod:`exhaustive`, its peaks refined at its band, then the cascade."""
    known = _known_xy(params)
    grid = exhaustive_grid_search(
        filtered, optics=optics, spectrum_pixel_size_angstrom=spectrum_pixel_size_angstrom,
        min_resolution_angstrom=params.min_resolution_angstrom, max_resolution_angstrom=max_res,
        min_defocus_angstrom=params.min_defocus_angstrom, max_defocus_angstrom=params.max_defocus_angstrom,
        phases_radian=_phases(params), astigmatism_restraint_angstrom=params.astigmatism_restraint_angstrom,
        known_xy_angstrom=known,
    )
    if not grid.peaks:  # an empty band: nothing to scan, fall back on the 1D-seeded search
        return fit_spectrum(filtered, params=dataclasses.replace(params, exhaustive_search=False),
                            spectrum_pixel_size_angstrom=spectrum_pixel_size_angstrom)
    free = (True, known is None, known is None, params.find_phase_shift)
    refined = [
        _refine(grid.pixels, params=params, optics=optics, start=(p.mean_angstrom, p.x_angstrom, p.y_angstrom, p.phase_shift_radian),
                free=free, tolerance_steps=0.1, simplex_angstrom=0.5 * grid.step_angstrom)
        for p in grid.peaks
    ]
    refined.sort(key=lambda c: c.score, reverse=True)
    starts = [(c.mean_angstrom, c.x_angstrom, c.y_angstrom, c.phase_shift_radian) for c in refined[:_STARTS]]
    best = _cascade(pixels, params=params, optics=optics, starts=starts, free=free)
    top = grid.peaks[0]
    return dataclasses.replace(best, initial=(top.mean_angstrom, top.x_angstrom, top.y_angstrom, top.phase_shift_radian, top.score))
