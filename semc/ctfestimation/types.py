"""Typed parameters and results of CTF estimation (built-in engine and CTFFIND-compatible files).

Conventions (CTFFIND/cisTEM, see ``algorithms.md`` §3.1): defocus in Å, positive
is underfocus; ``defocus_1_angstrom >= defocus_2_angstrom``; defocus 1 lies along
the astigmatism azimuth, which is in degrees, counter-clockwise from the x axis
(array columns) towards y (array rows), wrapped into (-90, 90]; the amplitude
contrast is a fraction entered as a phase; the additional phase shift is in radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from semc.base.errors import InvalidParameters

__all__ = ["CtfSearchParameters", "CtfDiagnostics", "CtfResult"]

_STEP = "ctfestimation"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidParameters(message, step=_STEP)


@dataclass(frozen=True, slots=True)
class CtfSearchParameters:
    """Everything CTFFIND 4.1 asks for, with CTFFIND's defaults.

    Attributes
    ----------
    pixel_size_angstrom, voltage_kv, spherical_aberration_mm, amplitude_contrast
        Optics of the input (the amplitude contrast is a fraction, 0 <= w < 1).
    box_size
        Size (px) of the amplitude spectrum that is fitted (even, >= 64).
    min_resolution_angstrom, max_resolution_angstrom
        Resolution band of the fit (Å); min > max.
    min_defocus_angstrom, max_defocus_angstrom, defocus_step_angstrom
        Defocus search range and step (Å, positive = underfocus).
    known_astigmatism_angstrom, known_astigmatism_azimuth_degree
        When both are given, astigmatism is not searched ("Do you know what astigmatism is present?").
    exhaustive_search
        "Slower, more exhaustive search": a brute-force grid over the whole defocus range
        (both defoci and the azimuth, against the 2D spectrum) before refinement.
    astigmatism_restraint_angstrom
        Expected (tolerated) astigmatism (Å); ``None`` for no restraint.
    find_phase_shift, min_phase_shift_radian, max_phase_shift_radian, phase_shift_step_radian
        Additional (phase-plate) phase shift search.
    resample, target_pixel_size_angstrom
        Expert option: when the pixel is smaller than the target, the spectrum is
        resampled so that its pixel is close to (at most) the target (Å).
    determine_tilt
        Also estimate the specimen tilt (axis and angle) from the defocus change across the
        micrograph, as CTFFIND 5's "Determine sample tilt?" (micrograph or movie input only).
    """

    pixel_size_angstrom: float
    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    box_size: int = 512
    min_resolution_angstrom: float = 30.0
    max_resolution_angstrom: float = 5.0
    min_defocus_angstrom: float = 5000.0
    max_defocus_angstrom: float = 50000.0
    defocus_step_angstrom: float = 100.0
    known_astigmatism_angstrom: float | None = None
    known_astigmatism_azimuth_degree: float | None = None
    exhaustive_search: bool = False
    astigmatism_restraint_angstrom: float | None = None
    find_phase_shift: bool = False
    min_phase_shift_radian: float = 0.0
    max_phase_shift_radian: float = 3.15
    phase_shift_step_radian: float = 0.5
    resample: bool = True
    target_pixel_size_angstrom: float = 1.4
    determine_tilt: bool = False

    def __post_init__(self) -> None:
        _require(self.pixel_size_angstrom > 0, f"pixel size must be positive, got {self.pixel_size_angstrom}")
        _require(self.voltage_kv > 0, f"acceleration voltage must be positive, got {self.voltage_kv}")
        _require(self.spherical_aberration_mm >= 0, f"spherical aberration must be >= 0, got {self.spherical_aberration_mm}")
        _require(0.0 <= self.amplitude_contrast < 1.0, f"amplitude contrast must be in [0, 1), got {self.amplitude_contrast}")
        _require(self.box_size >= 64 and self.box_size % 2 == 0, f"box size must be even and >= 64, got {self.box_size}")
        _require(
            self.min_resolution_angstrom > self.max_resolution_angstrom > 0,
            f"minimum resolution ({self.min_resolution_angstrom} Å) must be larger than maximum resolution "
            f"({self.max_resolution_angstrom} Å) > 0",
        )
        _require(
            self.max_defocus_angstrom >= self.min_defocus_angstrom,
            f"maximum defocus ({self.max_defocus_angstrom}) must be >= minimum defocus ({self.min_defocus_angstrom})",
        )
        _require(self.defocus_step_angstrom > 0, f"defocus step must be positive, got {self.defocus_step_angstrom}")
        known = (self.known_astigmatism_angstrom is None, self.known_astigmatism_azimuth_degree is None)
        _require(known[0] == known[1], "known astigmatism needs both the value and the angle")
        if self.known_astigmatism_angstrom is not None:
            _require(self.known_astigmatism_angstrom >= 0, "known astigmatism must be >= 0")
        if self.astigmatism_restraint_angstrom is not None:
            _require(self.astigmatism_restraint_angstrom > 0, "expected astigmatism must be positive")
        if self.find_phase_shift:
            _require(
                self.max_phase_shift_radian >= self.min_phase_shift_radian,
                "maximum phase shift must be >= minimum phase shift",
            )
            _require(self.phase_shift_step_radian > 0, "phase shift step must be positive")
        _require(self.target_pixel_size_angstrom > 0, "target pixel size must be positive")
        for name in ("pixel_size_angstrom", "voltage_kv", "min_defocus_angstrom", "max_defocus_angstrom"):
            _require(math.isfinite(getattr(self, name)), f"{name} must be finite")


@dataclass(frozen=True, slots=True, eq=False)
class CtfDiagnostics:
    """The 1D curves of CTFFIND's ``_avrot.txt`` and the diagnostic image.

    Attributes
    ----------
    spatial_frequency_per_angstrom
        (n_bins,) bin centres, 1/Å.
    rotational_average
        (n_bins,) rotational average of the background-subtracted spectrum, ignoring astigmatism.
    equiphase_average
        (n_bins,) equi-phase (astigmatism-aware) average, rescaled to the fit.
    ctf_fit
        (n_bins,) |CTF| of the fit with the mean defocus.
    fit_correlation
        (n_bins,) windowed correlation between the equi-phase average and the fit.
    noise_correlation_2sigma
        (n_bins,) two standard deviations of that correlation for pure noise.
    diagnostic_image
        (box, box) float32: left half the background-subtracted spectrum, right half the fitted |CTF|.
    """

    spatial_frequency_per_angstrom: np.ndarray
    rotational_average: np.ndarray
    equiphase_average: np.ndarray
    ctf_fit: np.ndarray
    fit_correlation: np.ndarray
    noise_correlation_2sigma: np.ndarray
    diagnostic_image: np.ndarray

    def __post_init__(self) -> None:
        n = self.spatial_frequency_per_angstrom.shape
        for name in ("rotational_average", "equiphase_average", "ctf_fit", "fit_correlation", "noise_correlation_2sigma"):
            _require(getattr(self, name).shape == n, f"{name} must have shape {n}")


@dataclass(frozen=True, slots=True, eq=False)
class CtfResult:
    """One fitted micrograph, in CTFFIND's conventions (see the module docstring).

    Attributes
    ----------
    defocus_1_angstrom, defocus_2_angstrom
        Defocus along the azimuth and perpendicular to it (Å, underfocus positive, d1 >= d2).
    astigmatism_azimuth_degree
        Azimuth of defocus 1 (degrees, counter-clockwise from x, in (-90, 90]).
    phase_shift_radian
        Additional phase shift (rad; 0 when not searched).
    cross_correlation
        CTFFIND's score: Pearson correlation of the spectrum with |CTF| in the fit band.
    fit_resolution_angstrom
        Spacing (Å) up to which Thon rings were fit successfully (``inf`` when none).
    spectrum_pixel_size_angstrom
        Pixel size (Å) of the fitted spectrum (after resampling).
    diagnostics
        Curves and image for the ``_avrot.txt`` and diagnostic files.
    timings_s
        Seconds spent in "spectrum", "search" and "diagnostics".
    search_start
        Best point of the initial brute-force search, before refinement, as CTFFIND prints it:
        (defocus 1 Å, defocus 2 Å, azimuth degrees, score of that search); ``None`` when not recorded.
    tilt_axis_degree, tilt_angle_degree
        Specimen tilt when asked for (``CtfSearchParameters.determine_tilt``): axis in [0, 360)
        degrees counter-clockwise from x, angle in [0, 90) degrees; at (x, y) Å from the image
        centre the defocus is the mean + (-x sin(axis) + y cos(axis)) tan(angle). ``None`` otherwise.
    """

    defocus_1_angstrom: float
    defocus_2_angstrom: float
    astigmatism_azimuth_degree: float
    phase_shift_radian: float
    cross_correlation: float
    fit_resolution_angstrom: float
    spectrum_pixel_size_angstrom: float
    diagnostics: CtfDiagnostics
    timings_s: dict[str, float] = field(default_factory=dict)
    search_start: tuple[float, float, float, float] | None = None
    tilt_axis_degree: float | None = None
    tilt_angle_degree: float | None = None

    def __post_init__(self) -> None:
        _require(
            self.defocus_1_angstrom >= self.defocus_2_angstrom,
            f"defocus 1 ({self.defocus_1_angstrom}) must be >= defocus 2 ({self.defocus_2_angstrom})",
        )
        _require(-90.0 < self.astigmatism_azimuth_degree <= 90.0, "azimuth must be in (-90, 90]")

    @property
    def mean_defocus_angstrom(self) -> float:
        """(defocus 1 + defocus 2) / 2, Å."""
        return 0.5 * (self.defocus_1_angstrom + self.defocus_2_angstrom)

    @property
    def astigmatism_angstrom(self) -> float:
        """defocus 1 - defocus 2, Å (>= 0)."""
        return self.defocus_1_angstrom - self.defocus_2_angstrom
