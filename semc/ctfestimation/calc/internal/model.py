"""The CTF model in CTFFIND's conventions (``algorithms.md`` §3.1).

chi(g, theta) = pi*lambda*g^2*df(theta) - pi/2*Cs*lambda^3*g^4 + phi_pp + arctan(w / sqrt(1 - w^2))
df(theta)     = (df1 + df2)/2 + (df1 - df2)/2 * cos 2(theta - theta_ast)
CTF           = -sin(chi)

Astigmatism is also handled in the smooth parametrisation used by the search:
df(theta) = mean + x*cos(2 theta) + y*sin(2 theta), with x = a/2 cos(2 theta_ast),
y = a/2 sin(2 theta_ast) and a = df1 - df2 >= 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from semc.base.errors import InvalidParameters
from semc.base.units import electron_wavelength_angstrom

__all__ = [
    "CtfOptics",
    "amplitude_contrast_phase_radian",
    "ctf_phase",
    "ctf_values",
    "defoci_from_xy",
    "xy_from_defoci",
]


@dataclass(frozen=True, slots=True)
class CtfOptics:
    """Microscope constants of the CTF.

    Attributes
    ----------
    voltage_kv
        Acceleration voltage (kV).
    spherical_aberration_mm
        Cs (mm).
    amplitude_contrast
        Amplitude contrast fraction w, 0 <= w < 1.
    """

    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float

    def __post_init__(self) -> None:
        if not (self.voltage_kv > 0 and self.spherical_aberration_mm >= 0 and 0 <= self.amplitude_contrast < 1):
            raise InvalidParameters(
                f"bad optics: {self.voltage_kv} kV, Cs {self.spherical_aberration_mm} mm, "
                f"amplitude contrast {self.amplitude_contrast}",
                step="ctfestimation",
            )

    @property
    def wavelength_angstrom(self) -> float:
        """Relativistic electron wavelength (Å)."""
        return electron_wavelength_angstrom(self.voltage_kv)

    @property
    def cs_angstrom(self) -> float:
        """Cs in Å."""
        return self.spherical_aberration_mm * 1.0e7

    @property
    def defocus_coefficient(self) -> float:
        """pi*lambda: chi's defocus term is this times g^2 * df (rad per Å^-1 per Å)."""
        return math.pi * self.wavelength_angstrom

    @property
    def cs_coefficient(self) -> float:
        """pi/2*Cs*lambda^3: chi's Cs term is minus this times g^4."""
        return 0.5 * math.pi * self.cs_angstrom * self.wavelength_angstrom**3


def amplitude_contrast_phase_radian(amplitude_contrast: float) -> float:
    """arctan(w / sqrt(1 - w^2)): the amplitude contrast fraction as a phase (rad)."""
    return math.atan2(amplitude_contrast, math.sqrt(1.0 - amplitude_contrast**2))


def ctf_phase(
    *,
    optics: CtfOptics,
    spatial_frequency_per_angstrom: np.ndarray,
    azimuth_radian: np.ndarray | float,
    defocus_1_angstrom: float,
    defocus_2_angstrom: float,
    astigmatism_azimuth_degree: float,
    phase_shift_radian: float = 0.0,
) -> np.ndarray:
    """Phase chi of the CTF (rad) at frequencies g (1/Å) and azimuths theta (rad).

    Returns
    -------
    numpy.ndarray
        chi, broadcast shape of the frequency and azimuth arrays.
    """
    g2 = np.asarray(spatial_frequency_per_angstrom, dtype=np.float64) ** 2
    theta_ast = math.radians(astigmatism_azimuth_degree)
    defocus = 0.5 * (
        defocus_1_angstrom
        + defocus_2_angstrom
        + (defocus_1_angstrom - defocus_2_angstrom) * np.cos(2.0 * (np.asarray(azimuth_radian) - theta_ast))
    )
    return (
        optics.defocus_coefficient * g2 * defocus
        - optics.cs_coefficient * g2 * g2
        + phase_shift_radian
        + amplitude_contrast_phase_radian(optics.amplitude_contrast)
    )


def ctf_values(**kwargs) -> np.ndarray:
    """CTF = -sin(chi); same keyword arguments as :func:`ctf_phase`."""
    return -np.sin(ctf_phase(**kwargs))


def xy_from_defoci(
    defocus_1_angstrom: float, defocus_2_angstrom: float, astigmatism_azimuth_degree: float
) -> tuple[float, float, float]:
    """(mean, x, y) of the smooth parametrisation (Å) from CTFFIND's (df1, df2, azimuth)."""
    half = 0.5 * (defocus_1_angstrom - defocus_2_angstrom)
    angle = 2.0 * math.radians(astigmatism_azimuth_degree)
    return 0.5 * (defocus_1_angstrom + defocus_2_angstrom), half * math.cos(angle), half * math.sin(angle)


def defoci_from_xy(mean_angstrom: float, x_angstrom: float, y_angstrom: float) -> tuple[float, float, float]:
    """CTFFIND's (df1, df2, azimuth in (-90, 90] degrees) from the smooth parametrisation."""
    half = math.hypot(x_angstrom, y_angstrom)
    azimuth = 0.5 * math.degrees(math.atan2(y_angstrom, x_angstrom)) if half > 0 else 0.0
    if azimuth <= -90.0:
        azimuth += 180.0
    return mean_angstrom + half, mean_angstrom - half, azimuth
