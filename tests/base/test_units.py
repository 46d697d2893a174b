"""Physical constants and conversions against published values."""

from __future__ import annotations

import pytest

from semc.base import units as u


@pytest.mark.parametrize("kv,wavelength", [(300, 0.019687), (200, 0.025079), (120, 0.033492), (100, 0.037014)])
def test_relativistic_wavelength_matches_tabulated_values(kv, wavelength):
    # Williams & Carter, Transmission Electron Microscopy, Table 1.1
    assert u.electron_wavelength_angstrom(kv) == pytest.approx(wavelength, abs=2e-6)


def test_wavelength_of_a_non_positive_voltage_is_an_error():
    with pytest.raises(ValueError, match="positive"):
        u.electron_wavelength_angstrom(0)


def test_leginon_units_convert_to_engine_units():
    assert u.e_per_a2_from_e_per_m2(5.4546e21) == pytest.approx(54.546)  # compat §5.5 oracle: 50 frames -> 1.091
    assert u.angstrom_from_metre(4.13e-11 * 2) == pytest.approx(0.826)  # compat §1.4 pixel-size oracle
    assert u.kv_from_volt(300000) == 300
    assert u.mm_from_metre(2.7e-3) == pytest.approx(2.7)
    assert u.angstrom_from_micrometre(1.5) == pytest.approx(15000)
    assert u.metre_from_angstrom(u.angstrom_from_metre(1.23e-6)) == pytest.approx(1.23e-6)
