"""Physical constants and unit conversions, each named with its unit and source.

Leginon stores SI units (metres, volts, electrons per square metre, radians,
milliseconds); the engines work in Ångström, kV, e/Å², degrees and seconds.
Every conversion between the two goes through a named function here, never a
bare ``1e10`` or ``1e20`` in the code.
"""

from __future__ import annotations

import math

__all__ = [
    "ANGSTROM_PER_METRE",
    "ELECTRON_REST_ENERGY_EV",
    "PLANCK_TIMES_C_EV_ANGSTROM",
    "angstrom_from_metre",
    "metre_from_angstrom",
    "micrometre_from_metre",
    "metre_from_micrometre",
    "angstrom_from_micrometre",
    "e_per_a2_from_e_per_m2",
    "e_per_m2_from_e_per_a2",
    "kv_from_volt",
    "volt_from_kv",
    "mm_from_metre",
    "metre_from_mm",
    "degree_from_radian",
    "radian_from_degree",
    "electron_wavelength_angstrom",
    "RELATIVISTIC_FACTOR_PER_V",
]

#: 1 m = 1e10 Å
ANGSTROM_PER_METRE = 1.0e10
#: 1 m² = 1e20 Å²; Leginon's PresetData.dose is in electrons per m² (compat §1.4)
A2_PER_M2 = 1.0e20
#: electron rest energy m0·c², eV (CODATA 2018: 510 998.950 eV)
ELECTRON_REST_ENERGY_EV = 510_998.950
#: h·c in eV·Å (CODATA 2018: 12 398.419 84 eV·Å)
PLANCK_TIMES_C_EV_ANGSTROM = 12_398.41984
#: e / (2 m0 c²) in 1/V, the relativistic correction factor of the accelerating potential
RELATIVISTIC_FACTOR_PER_V = 1.0 / (2.0 * ELECTRON_REST_ENERGY_EV)


def angstrom_from_metre(value_m: float) -> float:
    """Metres to Ångström."""
    return value_m * ANGSTROM_PER_METRE


def metre_from_angstrom(value_a: float) -> float:
    """Ångström to metres."""
    return value_a / ANGSTROM_PER_METRE


def micrometre_from_metre(value_m: float) -> float:
    """Metres to micrometres."""
    return value_m * 1.0e6


def metre_from_micrometre(value_um: float) -> float:
    """Micrometres to metres."""
    return value_um * 1.0e-6


def angstrom_from_micrometre(value_um: float) -> float:
    """Micrometres to Ångström (1 µm = 1e4 Å)."""
    return value_um * 1.0e4


def e_per_a2_from_e_per_m2(dose_e_per_m2: float) -> float:
    """Leginon dose (electrons per m²) to electrons per Å² (compat §1.4: divide by 1e20)."""
    return dose_e_per_m2 / A2_PER_M2


def e_per_m2_from_e_per_a2(dose_e_per_a2: float) -> float:
    """Electrons per Å² to Leginon's electrons per m²."""
    return dose_e_per_a2 * A2_PER_M2


def kv_from_volt(high_tension_v: float) -> float:
    """Leginon ``high tension`` (volts) to kV."""
    return high_tension_v / 1000.0


def volt_from_kv(voltage_kv: float) -> float:
    """kV to volts."""
    return voltage_kv * 1000.0


def mm_from_metre(value_m: float) -> float:
    """Metres to millimetres (InstrumentData.cs is in metres; CTF programs take mm)."""
    return value_m * 1.0e3


def metre_from_mm(value_mm: float) -> float:
    """Millimetres to metres."""
    return value_mm / 1.0e3


def degree_from_radian(value_rad: float) -> float:
    """Radians to degrees."""
    return math.degrees(value_rad)


def radian_from_degree(value_deg: float) -> float:
    """Degrees to radians."""
    return math.radians(value_deg)


def electron_wavelength_angstrom(voltage_kv: float) -> float:
    """Relativistic electron wavelength.

    λ = h·c / sqrt(E·(E + 2·m0·c²)) with E = e·V the kinetic energy
    (e.g. Williams & Carter, *Transmission Electron Microscopy*, eq. 1.6).
    300 kV gives 0.019 687 Å, 200 kV 0.025 079 Å.

    Parameters
    ----------
    voltage_kv
        Accelerating voltage in kV; must be positive.

    Returns
    -------
    float
        Wavelength in Å.

    Raises
    ------
    ValueError
        If the voltage is not positive.
    """
    if not voltage_kv > 0:
        raise ValueError(f"voltage must be positive, got {voltage_kv!r} kV")
    energy_ev = voltage_kv * 1000.0
    return PLANCK_TIMES_C_EV_ANGSTROM / math.sqrt(
        energy_ev * (energy_ev + 2.0 * ELECTRON_REST_ENERGY_EV)
    )
