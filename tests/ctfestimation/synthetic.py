"""A small, independent generator of micrographs with a known CTF (test helper).

A white Gaussian phase texture is filtered by -sin(chi) (CTFFIND's convention,
written out here from the formula in ``algorithms.md`` §3.1, not imported from the
engine) and a B-factor envelope, added to a flat beam and Poisson-sampled.
"""

from __future__ import annotations

import math

import numpy as np


def wavelength_angstrom(voltage_kv: float) -> float:
    """λ = 12.2639 / sqrt(V + 0.97845e-6 V^2), V in volts (the textbook approximation)."""
    volts = voltage_kv * 1e3
    return 12.2639 / math.sqrt(volts + 0.97845e-6 * volts**2)


def _frequencies(shape: tuple[int, int], pixel_size_angstrom: float, voltage_kv: float):
    """g^2 (1/Å^2) and azimuth (rad) on the rfft2 grid of ``shape``, and the wavelength (Å)."""
    ky = np.fft.fftfreq(shape[0], d=pixel_size_angstrom)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size_angstrom)[None, :]
    return kx**2 + ky**2, np.arctan2(ky, kx), wavelength_angstrom(voltage_kv)


def synthetic_micrograph(
    *,
    shape: tuple[int, int],
    pixel_size_angstrom: float,
    voltage_kv: float,
    cs_mm: float,
    amplitude_contrast: float,
    defocus_1_angstrom: float,
    defocus_2_angstrom: float,
    azimuth_degree: float,
    phase_shift_radian: float = 0.0,
    dose_per_pixel: float = 20.0,
    bfactor_a2: float = 40.0,
    seed: int = 0,
) -> np.ndarray:
    """(ny, nx) float32 Poisson counts whose Thon rings follow the given CTF (rows = y, columns = x)."""
    rng = np.random.default_rng(seed)
    g2, theta, lam = _frequencies(shape, pixel_size_angstrom, voltage_kv)
    defocus = 0.5 * (defocus_1_angstrom + defocus_2_angstrom
                     + (defocus_1_angstrom - defocus_2_angstrom) * np.cos(2 * (theta - math.radians(azimuth_degree))))
    chi = (math.pi * lam * g2 * defocus - 0.5 * math.pi * cs_mm * 1e7 * lam**3 * g2**2
           + phase_shift_radian + math.atan(amplitude_contrast / math.sqrt(1 - amplitude_contrast**2)))
    transfer = -np.sin(chi) * np.exp(-bfactor_a2 * g2 / 4.0)
    texture = np.fft.rfft2(rng.normal(size=shape))
    image = np.fft.irfft2(texture * transfer, s=shape)
    image *= 0.15 / image.std()
    return rng.poisson(dose_per_pixel * np.clip(1.0 + image, 0.0, None)).astype(np.float32)


def synthetic_tilted_micrograph(
    *,
    shape: tuple[int, int],
    pixel_size_angstrom: float,
    voltage_kv: float,
    cs_mm: float,
    amplitude_contrast: float,
    mean_defocus_angstrom: float,
    astigmatism_angstrom: float,
    azimuth_degree: float,
    tilt_axis_degree: float,
    tilt_angle_degree: float,
    levels: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """A micrograph of a tilted specimen: at (x, y) Å from the centre (x columns, y rows) the defocus is
    mean + (-x sin(axis) + y cos(axis)) tan(angle). The image is assembled from ``levels`` CTF-filtered
    copies of one texture, each pixel taken from the copy whose defocus is nearest its own."""
    rng = np.random.default_rng(seed)
    g2, theta, lam = _frequencies(shape, pixel_size_angstrom, voltage_kv)
    astig = 0.5 * astigmatism_angstrom * np.cos(2 * (theta - math.radians(azimuth_degree)))
    texture = np.fft.rfft2(rng.normal(size=shape))
    y, x = ((np.arange(n) - (n - 1) / 2.0) * pixel_size_angstrom for n in shape)
    phi = math.radians(tilt_axis_degree)
    defocus = mean_defocus_angstrom + (-x[None, :] * math.sin(phi) + y[:, None] * math.cos(phi)) * math.tan(math.radians(tilt_angle_degree))
    values = np.linspace(defocus.min(), defocus.max(), levels)
    spacing = (values[-1] - values[0]) / max(levels - 1, 1) or 1.0
    nearest = np.clip(np.rint((defocus - values[0]) / spacing), 0, levels - 1).astype(np.int64)
    image = np.zeros(shape)
    for index, value in enumerate(values):
        chi = (math.pi * lam * g2 * (value + astig) - 0.5 * math.pi * cs_mm * 1e7 * lam**3 * g2**2
               + math.atan(amplitude_contrast / math.sqrt(1 - amplitude_contrast**2)))
        copy = np.fft.irfft2(texture * -np.sin(chi) * np.exp(-40.0 * g2 / 4.0), s=shape)
        image[nearest == index] = copy[nearest == index]
    image *= 0.15 / image.std()
    return rng.poisson(20.0 * np.clip(1.0 + image, 0.0, None)).astype(np.float32)
