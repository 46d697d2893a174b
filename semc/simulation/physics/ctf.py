"""The contrast transfer function and its envelopes, in CTFFIND's conventions.

Conventions (CTFFIND / cisTEM ``ctf.cpp``, RELION uses the same; see
``docs/algorithms.md`` §3.1):

- positive defocus is underfocus, in Å; ``defocus1`` is the defocus along the
  astigmatism azimuth, ``defocus2`` perpendicular to it;
- the azimuth is in degrees, measured from the x axis (array axis 1, columns)
  towards the y axis (array axis 0, rows);
- the amplitude contrast fraction ``w`` enters as a phase arctan(w / sqrt(1 - w²));
- the additional (phase-plate) phase shift is in radians;
- χ(g, θ) = π λ g² Δf(θ) − ½ π Cs λ³ g⁴ + φ_pp + arctan(w / sqrt(1 − w²)),
  Δf(θ) = ½ [Δf₁ + Δf₂ + (Δf₁ − Δf₂) cos 2(θ − θ_ast)], CTF = −sin χ;
- the relativistic wavelength comes from :func:`semc.base.units.electron_wavelength_angstrom`.

Frequency grids here are in the ``scipy.fft.rfft2`` layout: shape
``(ny, nx // 2 + 1)``, axis 0 is ky (rows), axis 1 is kx (columns).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from semc.base.units import electron_wavelength_angstrom
from semc.simulation.types import OpticsSpec

__all__ = [
    "frequency_grid",
    "ctf_phase",
    "ctf_2d",
    "envelope_2d",
    "critical_exposure_e_per_a2",
    "damage_filter",
    "detector_mtf",
    "interaction_constant_rad_per_v_a",
]

#: Grant & Grigorieff (2015) critical exposure N_e(k) = a k^b + c (k in 1/Å, e/Å²), 300 kV
_GG_A, _GG_B, _GG_C = 0.245, -1.665, 2.81


def frequency_grid(
    shape: tuple[int, int], pixel_size_angstrom: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Spatial frequencies (1/Å) of the rfft2 layout of an image of ``shape`` (ny, nx).

    Returns
    -------
    ky, kx
        Broadcastable arrays of shape (ny, 1) and (1, nx // 2 + 1), in 1/Å.
    """
    ny, nx = shape
    ky = np.fft.fftfreq(ny, d=pixel_size_angstrom)[:, None]
    kx = np.fft.rfftfreq(nx, d=pixel_size_angstrom)[None, :]
    return ky, kx


def _polar(ky, kx):
    g2 = kx * kx + ky * ky
    theta = np.arctan2(ky, kx)
    return g2, theta


def ctf_phase(
    g2: NDArray[np.float64],
    theta: NDArray[np.float64],
    *,
    optics: OpticsSpec,
    defocus_offset_angstrom: float = 0.0,
) -> NDArray[np.float64]:
    """χ(g, θ) in radians (see the module docstring); ``g2`` = g² in 1/Å², ``theta`` in radians.

    ``defocus_offset_angstrom`` is added to both defoci (a particle above or below
    the reference plane, a point of a tilted field).
    """
    lam = electron_wavelength_angstrom(optics.voltage_kv)
    cs_a = optics.cs_mm * 1.0e7
    d1 = optics.defocus1_angstrom + defocus_offset_angstrom
    d2 = optics.defocus2_angstrom + defocus_offset_angstrom
    az = math.radians(optics.astigmatism_azimuth_degree)
    dfz = 0.5 * (d1 + d2 + (d1 - d2) * np.cos(2.0 * (theta - az)))
    w = optics.amplitude_contrast
    amp_phase = math.atan2(w, math.sqrt(max(0.0, 1.0 - w * w)))
    return (
        math.pi * lam * g2 * dfz
        - 0.5 * math.pi * cs_a * lam**3 * g2 * g2
        + optics.phase_shift_radian
        + amp_phase
    )


def envelope_2d(
    g2: NDArray[np.float64],
    theta: NDArray[np.float64],
    *,
    optics: OpticsSpec,
    defocus_offset_angstrom: float = 0.0,
) -> NDArray[np.float64]:
    """Product of the B-factor, temporal- and spatial-coherence envelopes (amplitude).

    - B-factor: exp(−B g² / 4).
    - Temporal coherence: exp(−½ (π λ δ)² g⁴), focal spread δ = Cc · ΔE / E
      (Frank, *Three-dimensional electron microscopy*, 2006, §2.3).
    - Spatial coherence (Gaussian source of semi-angle α):
      exp(−(π α / λ)² (Cs λ³ g³ − Δf λ g)²), with the astigmatic Δf(θ).
    """
    env = np.exp(-optics.bfactor_angstrom2 * g2 / 4.0)
    lam = electron_wavelength_angstrom(optics.voltage_kv)
    if optics.energy_spread_ev > 0 and optics.cc_mm > 0:
        delta = optics.cc_mm * 1.0e7 * optics.energy_spread_ev / (optics.voltage_kv * 1.0e3)
        env = env * np.exp(-0.5 * (math.pi * lam * delta) ** 2 * g2 * g2)
    if optics.illumination_semiangle_mrad > 0:
        alpha = optics.illumination_semiangle_mrad * 1.0e-3
        d1 = optics.defocus1_angstrom + defocus_offset_angstrom
        d2 = optics.defocus2_angstrom + defocus_offset_angstrom
        az = math.radians(optics.astigmatism_azimuth_degree)
        dfz = 0.5 * (d1 + d2 + (d1 - d2) * np.cos(2.0 * (theta - az)))
        g = np.sqrt(g2)
        cs_a = optics.cs_mm * 1.0e7
        env = env * np.exp(-((math.pi * alpha / lam) ** 2) * (cs_a * lam**3 * g**3 - dfz * lam * g) ** 2)
    return env


def ctf_2d(
    shape: tuple[int, int],
    pixel_size_angstrom: float,
    *,
    optics: OpticsSpec,
    defocus_offset_angstrom: float = 0.0,
    with_envelope: bool = True,
) -> NDArray[np.float64]:
    """CTF = −sin χ times the envelopes, on the rfft2 grid of ``shape`` (ny, nx // 2 + 1)."""
    ky, kx = frequency_grid(shape, pixel_size_angstrom)
    g2, theta = _polar(ky, kx)
    ctf = -np.sin(ctf_phase(g2, theta, optics=optics, defocus_offset_angstrom=defocus_offset_angstrom))
    if with_envelope:
        ctf = ctf * envelope_2d(g2, theta, optics=optics, defocus_offset_angstrom=defocus_offset_angstrom)
    return ctf


def critical_exposure_e_per_a2(k_per_angstrom: NDArray[np.float64], voltage_kv: float) -> NDArray[np.float64]:
    """Grant & Grigorieff (2015) critical exposure N_e(k) = (0.245 k^−1.665 + 2.81) · f_kV, e/Å².

    f_kV is 1 at ≥ 300 kV, 0.8 at 200 kV, 0.45 at 120 kV, linear in between
    (MotionCor3's interpolation, ``docs/algorithms.md`` §1.1 item 7).
    """
    if voltage_kv >= 300:
        f_kv = 1.0
    elif voltage_kv >= 200:
        f_kv = 0.8 + 0.002 * (voltage_kv - 200)
    else:
        f_kv = max(0.45 + 0.004375 * (voltage_kv - 120), 0.1)
    k = np.maximum(k_per_angstrom, 1.0e-6)
    return (_GG_A * k**_GG_B + _GG_C) * f_kv


def damage_filter(
    shape: tuple[int, int],
    pixel_size_angstrom: float,
    *,
    accumulated_dose_e_per_a2: float,
    voltage_kv: float,
) -> NDArray[np.float64]:
    """Amplitude attenuation of the specimen by radiation damage, exp(−N / (2 N_e(k))).

    The DC term is kept (mass is not lost, only high-resolution detail).
    """
    ky, kx = frequency_grid(shape, pixel_size_angstrom)
    k = np.sqrt(kx * kx + ky * ky)
    filt = np.exp(-accumulated_dose_e_per_a2 / (2.0 * critical_exposure_e_per_a2(k, voltage_kv)))
    filt[0, 0] = 1.0
    return filt


def detector_mtf(shape: tuple[int, int], *, rolloff: float = 0.0) -> NDArray[np.float64]:
    """MTF of a counting detector on the rfft2 grid: sinc(fx)·sinc(fy)·exp(−rolloff·f²).

    f in cycles per pixel; the sinc is the pixel's area integration. For a
    counting detector the shot noise stays white, so DQE(f) = MTF(f)².
    """
    ny, nx = shape
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.rfftfreq(nx)[None, :]
    mtf = np.sinc(fx) * np.sinc(fy)
    if rolloff > 0:
        mtf = mtf * np.exp(-rolloff * (fx * fx + fy * fy))
    return mtf


def interaction_constant_rad_per_v_a(voltage_kv: float) -> float:
    """Interaction constant σ = 2π / (λ V) · (m c² + e V) / (2 m c² + e V), rad / (V·Å).

    (Kirkland, *Advanced Computing in Electron Microscopy*, eq. 5.6); 300 kV → 6.526e-4.
    """
    from semc.base.units import ELECTRON_REST_ENERGY_EV

    lam = electron_wavelength_angstrom(voltage_kv)
    v = voltage_kv * 1.0e3
    mc2 = ELECTRON_REST_ENERGY_EV
    return 2.0 * math.pi / (lam * v) * (mc2 + v) / (2.0 * mc2 + v)
