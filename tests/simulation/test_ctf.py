"""The CTF of simulated micrographs against the textbook formula (CTFFIND conventions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semc.simulation.movie import simulate_micrograph
from semc.simulation.physics.ctf import critical_exposure_e_per_a2, interaction_constant_rad_per_v_a
from semc.simulation.types import DetectorSpec, MovieSpec, OpticsSpec, SpecimenSpec


def _wavelength_angstrom(voltage_v):
    # the classic closed form, independent of semc.base.units: 12.2639 / sqrt(V + 0.97845e-6 V²)
    return 12.2639 / math.sqrt(voltage_v + 0.97845e-6 * voltage_v**2)


def _chi(ky, kx, *, d1, d2, az_deg, cs_mm, kv, w, phase):
    """χ written out from CTFFIND's ctf.cpp description (docs/algorithms.md §3.1)."""
    lam = _wavelength_angstrom(kv * 1e3)
    g2 = kx**2 + ky**2
    theta = np.arctan2(ky, kx)
    dfz = 0.5 * (d1 + d2 + (d1 - d2) * np.cos(2 * (theta - math.radians(az_deg))))
    return (math.pi * lam * g2 * dfz - 0.5 * math.pi * cs_mm * 1e7 * lam**3 * g2**2
            + phase + math.atan(w / math.sqrt(1 - w * w)))


def _zero_to_peak_power(image, pix, g_range, **ctf):
    """Worst ratio, over 8 frequency shells, of the power at predicted zeros to that at predicted maxima."""
    spec = np.abs(np.fft.rfft2(image.astype(np.float64) - image.mean())) ** 2
    ky = np.fft.fftfreq(image.shape[0], d=pix)[:, None]
    kx = np.fft.rfftfreq(image.shape[1], d=pix)[None, :]
    g = np.sqrt(kx**2 + ky**2)
    s = np.abs(np.sin(_chi(ky, kx, **ctf)))
    edges = np.linspace(g_range[0], g_range[1], 9)
    ratios = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = (g > lo) & (g < hi)
        if (band & (s < 0.05)).sum() < 20 or (band & (s > 0.95)).sum() < 20:
            continue
        ratios.append(spec[band & (s < 0.05)].mean() / spec[band & (s > 0.95)].mean())
    assert len(ratios) >= 4
    return max(ratios)


OPTICS = dict(d1=21000.0, d2=16000.0, az_deg=30.0, cs_mm=2.7, kv=300.0, w=0.07, phase=0.0)


@pytest.fixture(scope="module")
def noise_free_micrograph():
    optics = OpticsSpec(voltage_kv=300, cs_mm=2.7, amplitude_contrast=0.07, defocus1_angstrom=21000,
                        defocus2_angstrom=16000, astigmatism_azimuth_degree=30.0)
    spec = MovieSpec(shape=(1024, 1024), n_frames=1, pixel_size_angstrom=1.0, optics=optics,
                     specimen=SpecimenSpec(n_particles=0, ice_texture=1.0, ice_thickness_angstrom=400),
                     detector=DetectorSpec.ideal(), radiation_damage=False)
    return simulate_micrograph(spec, seed=21, noise=False).clean


def test_ctf_zeros_of_a_noise_free_micrograph_are_where_the_formula_puts_them(noise_free_micrograph):
    ratio = _zero_to_peak_power(noise_free_micrograph, 1.0, (0.03, 0.3), **OPTICS)
    assert ratio < 0.01


@pytest.mark.parametrize("wrong", [dict(az_deg=-30.0), dict(d1=16000.0, d2=21000.0), dict(cs_mm=0.0),
                                   dict(d1=21300.0, d2=16300.0)])
def test_zero_test_detects_a_wrong_convention(noise_free_micrograph, wrong):
    ratio = _zero_to_peak_power(noise_free_micrograph, 1.0, (0.03, 0.3), **{**OPTICS, **wrong})
    assert ratio > 0.1


def test_phase_plate_and_amplitude_contrast_move_the_zeros_as_phases():
    optics = OpticsSpec(defocus1_angstrom=8000, defocus2_angstrom=8000, amplitude_contrast=0.2,
                        phase_shift_radian=1.2)
    spec = MovieSpec(shape=(512, 512), n_frames=1, pixel_size_angstrom=1.2, optics=optics,
                     specimen=SpecimenSpec(n_particles=0, ice_texture=1.0),
                     detector=DetectorSpec.ideal(), radiation_damage=False)
    clean = simulate_micrograph(spec, seed=2, noise=False).clean
    params = dict(d1=8000.0, d2=8000.0, az_deg=0.0, cs_mm=2.7, kv=300.0, w=0.2, phase=1.2)
    assert _zero_to_peak_power(clean, 1.2, (0.02, 0.35), **params) < 0.01
    assert _zero_to_peak_power(clean, 1.2, (0.02, 0.35), **{**params, "phase": 0.0}) > 0.1


def test_interaction_constant_at_300_kv_matches_kirkland():
    # Kirkland, Advanced Computing in Electron Microscopy, table 5.1: σ(300 kV) = 0.00065 rad/(V·Å)
    assert interaction_constant_rad_per_v_a(300.0) == pytest.approx(6.526e-4, rel=2e-3)


def test_critical_exposure_follows_grant_and_grigorieff():
    # N_e(k) = 0.245 k^-1.665 + 2.81 at 300 kV; at 1/4 Å⁻¹: 0.245 · 4^1.665 + 2.81
    assert critical_exposure_e_per_a2(np.array([0.25]), 300.0)[0] == pytest.approx(0.245 * 4**1.665 + 2.81)
    assert critical_exposure_e_per_a2(np.array([0.25]), 200.0)[0] == pytest.approx(0.8 * (0.245 * 4**1.665 + 2.81))
