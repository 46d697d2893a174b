"""CTFFIND-style diagnostics: equi-phase average, windowed fit correlation, fit resolution, image.

The fit resolution follows CTFFIND 4 (``algorithms.md`` §3.2 step 6): a windowed
correlation between the equi-phase average (EPA) and the fitted |CTF|, with a
window of (1 + 0.1 * n_extrema) times the local distance between extrema (at least
n_bins / 40); scanning outward from 10 % of the bins, the last good bin is the one
before the correlation drops below 0.1 after >= 3 bins above 0.1, or below 0.5
after >= 3 bins above 0.66.
"""

from __future__ import annotations

import math

import numpy as np

from semc.ctfestimation.calc.internal.model import CtfOptics, amplitude_contrast_phase_radian
from semc.ctfestimation.calc.internal.search import radial_profile
from semc.ctfestimation.types import CtfDiagnostics

__all__ = ["diagnostics_compute", "equiphase_average", "fit_correlation", "fit_resolution_angstrom"]


def _isotropic_phase(optics: CtfOptics, g2: np.ndarray, defocus: np.ndarray | float, phase: float) -> np.ndarray:
    return (
        optics.defocus_coefficient * g2 * defocus
        - optics.cs_coefficient * g2**2
        + phase
        + amplitude_contrast_phase_radian(optics.amplitude_contrast)
    )


def equiphase_average(
    filtered: np.ndarray, *, pixel_size_angstrom: float, optics: CtfOptics, mean_angstrom: float, x_angstrom: float, y_angstrom: float
) -> np.ndarray:
    """Average of the spectrum over pixels of equal CTF phase, binned like :func:`radial_profile`.

    Each pixel is moved to the radius g_eq at which the astigmatism-free CTF (mean
    defocus) has the pixel's phase; the Cs term is kept, so pixels past the
    extremum of the phase are dropped.

    Returns
    -------
    numpy.ndarray
        (box/2,) average per 1-px ring of g_eq (0 where a ring is empty).
    """
    box = filtered.shape[0]
    index = np.arange(box) - box // 2
    ky, kx = np.meshgrid(index / (box * pixel_size_angstrom), index / (box * pixel_size_angstrom), indexing="ij")
    g2 = kx**2 + ky**2
    theta2 = 2.0 * np.arctan2(ky, kx)
    target = optics.defocus_coefficient * g2 * (mean_angstrom + x_angstrom * np.cos(theta2) + y_angstrom * np.sin(theta2))
    target -= optics.cs_coefficient * g2**2
    a, c = optics.cs_coefficient, optics.defocus_coefficient * mean_angstrom
    if a > 0:
        discriminant = c**2 - 4.0 * a * target
        valid = discriminant >= 0
        u = np.where(valid, (c - np.sqrt(np.maximum(discriminant, 0.0))) / (2.0 * a), 0.0)
    else:
        valid = np.full(g2.shape, c > 0)
        u = target / c if c > 0 else g2
    ring = np.rint(np.sqrt(np.maximum(u, 0.0)) * box * pixel_size_angstrom).astype(np.int64)
    valid &= (ring < box // 2) & (u >= 0)
    sums = np.bincount(ring[valid], weights=filtered[valid], minlength=box // 2)
    counts = np.bincount(ring[valid], minlength=box // 2)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def fit_correlation(
    average: np.ndarray, fit: np.ndarray, chi: np.ndarray, *, first_bin: int
) -> tuple[np.ndarray, np.ndarray]:
    """Windowed Pearson correlation of ``average`` with ``fit`` (both (n,)) and its 2-sigma noise level.

    The half width at bin i is max(n/40, (1 + 0.1 n_extrema(i)) * distance between extrema at i),
    the distance coming from the slope of the CTF phase ``chi`` (rad per bin).
    """
    n = average.size
    slope = np.abs(np.gradient(chi))
    spacing = np.where(slope > 1e-9, (0.5 * math.pi) / np.maximum(slope, 1e-9), n)
    extrema = np.floor(np.abs(chi - chi[0]) / (0.5 * math.pi))
    half = np.clip(np.maximum(n / 40.0, (1.0 + 0.1 * extrema) * spacing), 2, n).astype(np.int64)
    index = np.arange(n)
    lo = np.maximum(first_bin, index - half)
    hi = np.minimum(n, index + half + 1)
    count = np.maximum(hi - lo, 1)
    cumulative = [np.concatenate([[0.0], np.cumsum(v)]) for v in (average, fit, average * fit, average**2, fit**2)]
    sa, sf, saf, saa, sff = (c[hi] - c[lo] for c in cumulative)
    covariance = saf - sa * sf / count
    variance = (saa - sa**2 / count) * (sff - sf**2 / count)
    valid = (index >= first_bin) & (variance > 1e-300)
    correlation = np.where(valid, covariance / np.sqrt(np.where(valid, variance, 1.0)), 0.0)
    noise = np.where(index >= first_bin, 2.0 / np.sqrt(count), 1.0)
    return correlation, noise


def fit_resolution_angstrom(correlation: np.ndarray, frequency: np.ndarray, *, first_bin: int) -> float:
    """CTFFIND's "spacing up to which CTF rings were fit successfully" (Å; ``inf`` when none)."""
    above_low = above_high = 0
    last_good = correlation.size - 1
    for i in range(max(first_bin, correlation.size // 10), correlation.size):
        value = correlation[i]
        if (above_low >= 3 and value < 0.1) or (above_high >= 3 and value < 0.5):
            last_good = i - 1
            break
        above_low += value > 0.1
        above_high += value > 0.66
    if above_low < 3 or frequency[last_good] <= 0:
        return math.inf
    return float(1.0 / frequency[last_good])


def _rescale_to(values: np.ndarray, target: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Least-squares a*values + b matching target over the band (identity if degenerate)."""
    v, t = values[band], target[band]
    variance = float(((v - v.mean()) ** 2).sum())
    if v.size < 2 or variance <= 0:
        return values
    slope = float(((v - v.mean()) * (t - t.mean())).sum() / variance)
    return slope * (values - v.mean()) + t.mean()


def diagnostics_compute(
    filtered: np.ndarray,
    *,
    pixel_size_angstrom: float,
    optics: CtfOptics,
    mean_angstrom: float,
    x_angstrom: float,
    y_angstrom: float,
    phase_shift_radian: float,
    min_resolution_angstrom: float,
) -> tuple[CtfDiagnostics, float]:
    """The ``_avrot.txt`` curves, the diagnostic image and the fit resolution (Å)."""
    frequency, rotational = radial_profile(filtered, pixel_size_angstrom=pixel_size_angstrom)
    epa = equiphase_average(
        filtered, pixel_size_angstrom=pixel_size_angstrom, optics=optics,
        mean_angstrom=mean_angstrom, x_angstrom=x_angstrom, y_angstrom=y_angstrom,
    )
    chi = _isotropic_phase(optics, frequency**2, mean_angstrom, phase_shift_radian)
    fit = np.abs(np.sin(chi))
    first_bin = math.ceil(frequency.size * 2 * pixel_size_angstrom / min_resolution_angstrom)
    band = np.arange(frequency.size) >= first_bin
    correlation, noise = fit_correlation(epa, fit, chi, first_bin=first_bin)
    resolution = fit_resolution_angstrom(correlation, frequency, first_bin=first_bin)
    image = _diagnostic_image(filtered, pixel_size_angstrom=pixel_size_angstrom, optics=optics,
                              mean_angstrom=mean_angstrom, x_angstrom=x_angstrom, y_angstrom=y_angstrom,
                              phase_shift_radian=phase_shift_radian)
    diagnostics = CtfDiagnostics(
        spatial_frequency_per_angstrom=frequency,
        rotational_average=_rescale_to(rotational, fit, band),
        equiphase_average=_rescale_to(epa, fit, band),
        ctf_fit=fit,
        fit_correlation=correlation,
        noise_correlation_2sigma=noise,
        diagnostic_image=image,
    )
    return diagnostics, resolution


def _diagnostic_image(
    filtered: np.ndarray, *, pixel_size_angstrom: float, optics: CtfOptics, mean_angstrom: float,
    x_angstrom: float, y_angstrom: float, phase_shift_radian: float,
) -> np.ndarray:
    """Left half: spectrum (normalised, clipped to +-3 sigma); right half: fitted |CTF| on the same scale."""
    box = filtered.shape[0]
    index = np.arange(box) - box // 2
    ky, kx = np.meshgrid(index / (box * pixel_size_angstrom), index / (box * pixel_size_angstrom), indexing="ij")
    g2 = kx**2 + ky**2
    theta2 = 2.0 * np.arctan2(ky, kx)
    defocus = mean_angstrom + x_angstrom * np.cos(theta2) + y_angstrom * np.sin(theta2)
    model = np.abs(np.sin(_isotropic_phase(optics, g2, defocus, phase_shift_radian)))
    data = filtered - filtered.mean()
    sigma = float(data.std()) or 1.0
    data = np.clip(data / sigma, -3.0, 3.0)
    image = data.copy()
    image[:, box // 2 :] = (model[:, box // 2 :] - 0.5) * 2.0 * float(data.std())
    return image.astype(np.float32)
