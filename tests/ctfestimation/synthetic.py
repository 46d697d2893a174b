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
    ny, nx = shape
    ky = np.fft.fftfreq(ny, d=pixel_size_angstrom)[:, None]
    kx = np.fft.rfftfreq(nx, d=pixel_size_angstrom)[None, :]
    g2 = kx**2 + ky**2
    theta = np.arctan2(ky, kx)
    lam = wavelength_angstrom(voltage_kv)
    defocus = 0.5 * (defocus_1_angstrom + defocus_2_angstrom
                     + (defocus_1_angstrom - defocus_2_angstrom) * np.cos(2 * (theta - math.radians(azimuth_degree))))
    chi = (math.pi * lam * g2 * defocus - 0.5 * math.pi * cs_mm * 1e7 * lam**3 * g2**2
           + phase_shift_radian + math.atan(amplitude_contrast / math.sqrt(1 - amplitude_contrast**2)))
    transfer = -np.sin(chi) * np.exp(-bfactor_a2 * g2 / 4.0)
    texture = np.fft.rfft2(rng.normal(size=shape))
    image = np.fft.irfft2(texture * transfer, s=shape)
    image *= 0.15 / image.std()
    return rng.poisson(dose_per_pixel * np.clip(1.0 + image, 0.0, None)).astype(np.float32)
