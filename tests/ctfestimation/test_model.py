"""The CTF model: conventions, published wavelengths, zeros, parametrisation round trips."""

import math

import numpy as np
import pytest

from semc.ctfestimation.calc.internal.model import (
    CtfOptics,
    amplitude_contrast_phase_radian,
    ctf_phase,
    ctf_values,
    defoci_from_xy,
    xy_from_defoci,
)
from tests.ctfestimation.synthetic import wavelength_angstrom


@pytest.mark.parametrize(("kv", "published"), [(300, 0.019687), (200, 0.025079), (120, 0.033491)])
def test_wavelength_matches_published_values(kv, published):
    assert CtfOptics(kv, 2.7, 0.07).wavelength_angstrom == pytest.approx(published, abs=2e-6)


def test_ctf_is_zero_where_the_defocus_term_is_a_multiple_of_pi_without_cs_or_amplitude_contrast():
    optics = CtfOptics(300, 0.0, 0.0)
    defocus = 15000.0
    g = np.sqrt(np.arange(1, 8) / (wavelength_angstrom(300) * defocus))
    values = ctf_values(optics=optics, spatial_frequency_per_angstrom=g, azimuth_radian=0.3,
                        defocus_1_angstrom=defocus, defocus_2_angstrom=defocus, astigmatism_azimuth_degree=10.0)
    np.testing.assert_allclose(values, 0.0, atol=1e-3)  # the textbook wavelength differs by ~1e-5 relative


def test_amplitude_contrast_of_one_is_a_quarter_turn_and_the_origin_has_minus_its_sine():
    assert amplitude_contrast_phase_radian(0.999999999) == pytest.approx(math.pi / 2, abs=1e-4)
    value = ctf_values(optics=CtfOptics(300, 2.7, 0.1), spatial_frequency_per_angstrom=np.zeros(1), azimuth_radian=0.0,
                       defocus_1_angstrom=1e4, defocus_2_angstrom=1e4, astigmatism_azimuth_degree=0.0)
    assert value[0] == pytest.approx(-0.1)


def test_defocus_1_lies_along_the_azimuth_and_defocus_2_perpendicular():
    optics = CtfOptics(300, 0.0, 0.0)
    g = np.array([0.1])
    lam = wavelength_angstrom(300)
    along = ctf_phase(optics=optics, spatial_frequency_per_angstrom=g, azimuth_radian=math.radians(30),
                      defocus_1_angstrom=20000, defocus_2_angstrom=18000, astigmatism_azimuth_degree=30)
    across = ctf_phase(optics=optics, spatial_frequency_per_angstrom=g, azimuth_radian=math.radians(120),
                       defocus_1_angstrom=20000, defocus_2_angstrom=18000, astigmatism_azimuth_degree=30)
    assert along[0] == pytest.approx(math.pi * lam * 0.01 * 20000, rel=1e-4)
    assert across[0] == pytest.approx(math.pi * lam * 0.01 * 18000, rel=1e-4)


@pytest.mark.parametrize("azimuth", [-89.0, -45.0, 0.0, 12.5, 60.0, 90.0])
def test_smooth_parametrisation_round_trips_with_ctffind_conventions(azimuth):
    d1, d2, back = defoci_from_xy(*xy_from_defoci(21000.0, 20000.0, azimuth))
    assert (d1, d2) == pytest.approx((21000.0, 20000.0))
    assert back == pytest.approx(azimuth, abs=1e-9)


def test_swapped_defoci_are_the_same_ctf_with_the_azimuth_turned_by_90_degrees():
    d1, d2, azimuth = defoci_from_xy(*xy_from_defoci(20000.0, 21000.0, 10.0))
    assert (d1, d2, azimuth) == pytest.approx((21000.0, 20000.0, -80.0))
    assert -90.0 < azimuth <= 90.0
