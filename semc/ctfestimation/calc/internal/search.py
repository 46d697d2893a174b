"""Defocus, astigmatism and phase-shift search against a background-subtracted spectrum.

Steps (CTFFIND 4 style, ``algorithms.md`` §3.2): a 1D brute force over defocus (and
phase shift) against the rotational average, a 2D grid over astigmatism around it,
then a Nelder-Mead refinement of (mean defocus, astigmatism x, y[, phase shift])
against every spectrum pixel of the fit band. The score is the Pearson correlation
of the spectrum with |CTF| (``score_batch``); an astigmatism restraint subtracts
a^2 / (2 tol^2) / n_pixels, as CTFFIND does.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from semc.ctfestimation.calc.internal._kernels import _score_kernel
from semc.ctfestimation.calc.internal.model import CtfOptics, amplitude_contrast_phase_radian

__all__ = ["FitPixels", "PixelScorer", "fit_pixels_select", "radial_profile", "score_batch", "search_defocus_1d"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class FitPixels:
    """Spectrum pixels of the fit band (kx >= 0 half plane, central cross excluded), flat.

    Attributes
    ----------
    g2
        (n,) squared spatial frequency, 1/Å^2.
    cos2, sin2
        (n,) cos(2 theta), sin(2 theta) of the pixel azimuth.
    data
        (n,) spectrum values minus their mean.
    data_norm
        Euclidean norm of ``data``.
    """

    g2: np.ndarray
    cos2: np.ndarray
    sin2: np.ndarray
    data: np.ndarray
    data_norm: float
    g2c: np.ndarray = field(init=False)
    g2s: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for name in ("g2", "cos2", "sin2", "data"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        shapes = {getattr(self, name).shape for name in ("g2", "cos2", "sin2", "data")}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"fit pixel arrays must be 1D of one length, got shapes {shapes}")
        object.__setattr__(self, "g2c", self.g2 * self.cos2)
        object.__setattr__(self, "g2s", self.g2 * self.sin2)

    def base(self, optics: CtfOptics) -> np.ndarray:
        """Candidate-independent phase: -pi/2 Cs lambda^3 g^4 + amplitude-contrast phase (rad)."""
        return -optics.cs_coefficient * self.g2**2 + amplitude_contrast_phase_radian(optics.amplitude_contrast)

    def subset(self, max_pixels: int) -> FitPixels:
        """Every k-th pixel so that at most ``max_pixels`` remain (for coarse grids)."""
        stride = max(1, math.ceil(self.g2.size / max_pixels))
        data = self.data[::stride] - self.data[::stride].mean()
        return FitPixels(self.g2[::stride], self.cos2[::stride], self.sin2[::stride], data, float(np.linalg.norm(data)))


def _frequency_grid(box: int, pixel_size_angstrom: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ky, kx) in 1/Å and radius in px of a centred box (origin at box/2)."""
    index = np.arange(box) - box // 2
    ky, kx = np.meshgrid(index, index, indexing="ij")
    return ky / (box * pixel_size_angstrom), kx / (box * pixel_size_angstrom), np.hypot(ky, kx)


def fit_pixels_select(
    filtered: np.ndarray, *, pixel_size_angstrom: float, min_resolution_angstrom: float, max_resolution_angstrom: float
) -> FitPixels:
    """Collect the fit-band pixels of a centred, background-subtracted (box, box) spectrum."""
    box = filtered.shape[0]
    ky, kx, _ = _frequency_grid(box, pixel_size_angstrom)
    g2 = kx**2 + ky**2
    step = 1.0 / (box * pixel_size_angstrom)
    mask = (g2 >= min_resolution_angstrom**-2) & (g2 <= max_resolution_angstrom**-2)
    mask &= (kx > 0) | ((kx == 0) & (ky > 0))
    mask &= (np.abs(kx) > 1.5 * step) & (np.abs(ky) > 1.5 * step)
    theta2 = 2.0 * np.arctan2(ky[mask], kx[mask])
    data = filtered[mask] - filtered[mask].mean()
    return FitPixels(g2[mask], np.cos(theta2), np.sin(theta2), data, float(np.linalg.norm(data)))


class PixelScorer:
    """Pearson score of :class:`FitPixels` against |CTF| for one optics (constant terms precomputed).

    Used in the refinement loop, where the per-call overhead of :func:`score_batch` matters.
    """

    __slots__ = ("_base", "_coefficient", "_one", "_pixels")

    def __init__(self, pixels: FitPixels, optics: CtfOptics) -> None:
        self._pixels = pixels
        self._base = pixels.base(optics)
        self._coefficient = optics.defocus_coefficient
        self._one = np.zeros((1, 4))

    @property
    def n_pixels(self) -> int:
        """Number of pixels scored."""
        return self._pixels.g2.size

    def _scores(self, sums: np.ndarray) -> np.ndarray:
        n = max(self._pixels.g2.size, 1)
        variance = sums[:, 1] - sums[:, 0] ** 2 / n
        ok = (variance > 1e-12) & (self._pixels.data_norm > 0)
        return np.where(ok, sums[:, 2] / (self._pixels.data_norm * np.sqrt(np.where(ok, variance, 1.0))), 0.0)

    def many(self, mean: np.ndarray, x: np.ndarray, y: np.ndarray, phase: np.ndarray) -> np.ndarray:
        """(m,) scores of broadcast (m,) candidates (Å, Å, Å, rad)."""
        a = self._coefficient
        m, xx, yy, pp = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (mean, x, y, phase)))
        coefficients = np.ascontiguousarray(np.stack([a * m, a * xx, a * yy, pp], axis=1).reshape(-1, 4))
        px = self._pixels
        return self._scores(_score_kernel(px.g2, px.g2c, px.g2s, self._base, px.data, coefficients))

    def one(self, mean: float, x: float, y: float, phase: float) -> float:
        """Score of one candidate (Å, Å, Å, rad)."""
        a = self._coefficient
        self._one[0, 0], self._one[0, 1], self._one[0, 2], self._one[0, 3] = a * mean, a * x, a * y, phase
        px = self._pixels
        sums = _score_kernel(px.g2, px.g2c, px.g2s, self._base, px.data, self._one)
        return float(self._scores(sums)[0])


def score_batch(
    pixels: FitPixels,
    *,
    optics: CtfOptics,
    mean_angstrom: np.ndarray,
    x_angstrom: np.ndarray,
    y_angstrom: np.ndarray,
    phase_shift_radian: np.ndarray,
) -> np.ndarray:
    """Pearson correlation of the pixels with |CTF| for m candidate parameter sets.

    Parameters
    ----------
    mean_angstrom, x_angstrom, y_angstrom, phase_shift_radian
        (m,) candidates (broadcast together); see :mod:`model` for the parametrisation.

    Returns
    -------
    numpy.ndarray
        (m,) scores in [-1, 1] (0 where the model is constant).
    """
    return PixelScorer(pixels, optics).many(mean_angstrom, x_angstrom, y_angstrom, phase_shift_radian)


def radial_profile(filtered: np.ndarray, *, pixel_size_angstrom: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotational average of a centred spectrum in 1-px rings: (g in 1/Å, average), both (box/2,)."""
    box = filtered.shape[0]
    _, _, radius = _frequency_grid(box, pixel_size_angstrom)
    ring = np.rint(radius).astype(np.int64).ravel()
    keep = ring < box // 2
    sums = np.bincount(ring[keep], weights=filtered.ravel()[keep], minlength=box // 2)
    counts = np.bincount(ring[keep], minlength=box // 2)
    return np.arange(box // 2) / (box * pixel_size_angstrom), sums / np.maximum(counts, 1)


def _pearson_rows(models: np.ndarray, data: np.ndarray) -> np.ndarray:
    centred = data - data.mean()
    m = models - models.mean(axis=1, keepdims=True)
    denominator = np.linalg.norm(m, axis=1) * np.linalg.norm(centred)
    return np.where(denominator > 0, m @ centred / np.where(denominator > 0, denominator, 1.0), 0.0)


def search_defocus_1d(
    *, frequency: np.ndarray, profile: np.ndarray, optics: CtfOptics, defoci_angstrom: np.ndarray, phases_radian: np.ndarray
) -> tuple[float, float, float]:
    """Brute force (defocus, phase) against a 1D profile, then a bounded polish of the defocus.

    Returns
    -------
    tuple
        (defocus in Å, phase shift in rad, Pearson score).
    """
    g2 = frequency**2
    base = -optics.cs_coefficient * g2**2 + amplitude_contrast_phase_radian(optics.amplitude_contrast)
    d, p = np.meshgrid(defoci_angstrom, phases_radian, indexing="ij")
    chi = optics.defocus_coefficient * d.reshape(-1, 1) * g2 + base + p.reshape(-1, 1)
    scores = _pearson_rows(np.abs(np.sin(chi)), profile)
    best = int(np.argmax(scores))
    defocus, phase = float(d.ravel()[best]), float(p.ravel()[best])
    step = float(defoci_angstrom[1] - defoci_angstrom[0]) if defoci_angstrom.size > 1 else 100.0

    def negative(df: float) -> float:
        model = np.abs(np.sin(optics.defocus_coefficient * df * g2 + base + phase))
        return -float(_pearson_rows(model[None, :], profile)[0])

    polished = scipy.optimize.minimize_scalar(negative, bounds=(defocus - step, defocus + step), method="bounded")
    if -polished.fun >= scores[best]:
        return float(polished.x), phase, float(-polished.fun)
    return defocus, phase, float(scores[best])
