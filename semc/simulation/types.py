"""Typed parameters of a simulation (frozen dataclasses, checked on construction).

Units are in the names. Geometry conventions used throughout the package:

- images are numpy arrays indexed ``[y, x]`` (row, column); x is array axis 1;
- a specimen *displacement* (shift) ``(x, y)`` in pixels moves the image content
  towards increasing column (x) and row (y) index; a motion corrector must apply
  the opposite shift, −shift, to bring a frame back onto frame 0;
- defocus is positive for underfocus, in Å (CTFFIND convention, see physics/ctf.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from semc.base.errors import InvalidParameters

__all__ = [
    "OpticsSpec",
    "SpecimenSpec",
    "MotionSpec",
    "DetectorSpec",
    "MovieSpec",
]

STEP = "simulation"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidParameters(message, step=STEP)


@dataclass(frozen=True, slots=True)
class OpticsSpec:
    """Microscope optics and the CTF (CTFFIND conventions; see physics/ctf.py)."""

    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    defocus1_angstrom: float = 15000.0
    defocus2_angstrom: float = 15000.0
    astigmatism_azimuth_degree: float = 0.0
    phase_shift_radian: float = 0.0
    bfactor_angstrom2: float = 0.0
    cc_mm: float = 2.7
    energy_spread_ev: float = 0.0
    illumination_semiangle_mrad: float = 0.0

    def __post_init__(self) -> None:
        _check(self.voltage_kv > 0, f"voltage must be positive, got {self.voltage_kv} kV")
        _check(self.cs_mm >= 0, f"Cs must be >= 0, got {self.cs_mm} mm")
        _check(0.0 <= self.amplitude_contrast <= 1.0,
               f"amplitude contrast is a fraction in [0, 1], got {self.amplitude_contrast}")
        _check(self.bfactor_angstrom2 >= 0, "envelope B-factor must be >= 0")
        _check(self.energy_spread_ev >= 0 and self.illumination_semiangle_mrad >= 0,
               "energy spread and illumination semi-angle must be >= 0")


@dataclass(frozen=True, slots=True)
class SpecimenSpec:
    """What is in the beam: particles from the model library in an ice layer, optional carbon.

    ``models`` names entries of :func:`semc.simulation.physics.models.model_library`
    or paths of PDB/mmCIF files (read by the caller into the library).
    ``particle_contrast_v`` is the mean inner potential of protein minus that of
    vitreous ice (≈ 7.3 − 4.9 V), used by the blob models.
    """

    n_particles: int = 40
    models: tuple[str, ...] = ("globular",)
    ice_thickness_angstrom: float = 300.0
    ice_texture: float = 1.0
    carbon_thickness_angstrom: float = 0.0
    carbon_edge_fraction: float = 0.15
    particle_contrast_v: float = 2.4
    slab_thickness_angstrom: float = 100.0
    min_separation_angstrom: float = 0.0
    zero_loss_mean_free_path_angstrom: float = 0.0

    def __post_init__(self) -> None:
        _check(self.n_particles >= 0, "n_particles must be >= 0")
        _check(len(self.models) > 0, "at least one particle model is needed")
        _check(self.ice_thickness_angstrom >= 0 and self.carbon_thickness_angstrom >= 0,
               "thicknesses must be >= 0")
        _check(0.0 <= self.carbon_edge_fraction <= 1.0, "carbon_edge_fraction is in [0, 1]")
        _check(self.slab_thickness_angstrom > 0, "slab thickness must be positive")
        _check(self.ice_texture >= 0, "ice_texture must be >= 0")
        _check(self.zero_loss_mean_free_path_angstrom >= 0, "mean free path must be >= 0 (0: no filter)")


@dataclass(frozen=True, slots=True)
class MotionSpec:
    """Beam-induced motion.

    Global trajectory (pixels, t in frames from the start of the exposure)::

        s(t) = A · u · (1 − exp(−t / τ)) + v · t + smooth random walk

    with ``A = global_amplitude_px``, ``u`` a random unit vector, ``v`` a random
    drift of magnitude ``drift_px_per_frame``, ``τ = decay_frames``; the random
    walk has steps of ``jitter_px`` per frame, smoothed. Local deformation: a
    smooth field of low-order Fourier modes over the image, growing in time like
    the exponential term, of RMS amplitude ``local_amplitude_px`` at the end.
    ``intra_frame_blur`` integrates the motion inside each frame exactly.
    """

    global_amplitude_px: float = 4.0
    decay_frames: float = 4.0
    drift_px_per_frame: float = 0.1
    jitter_px: float = 0.05
    local_amplitude_px: float = 0.0
    local_modes: int = 2
    intra_frame_blur: bool = True

    def __post_init__(self) -> None:
        _check(self.global_amplitude_px >= 0 and self.drift_px_per_frame >= 0 and self.jitter_px >= 0,
               "motion amplitudes must be >= 0")
        _check(self.decay_frames > 0, "decay_frames must be positive")
        _check(self.local_amplitude_px >= 0, "local_amplitude_px must be >= 0")
        _check(1 <= self.local_modes <= 6, "local_modes must be in 1..6")

    @classmethod
    def still(cls) -> "MotionSpec":
        """No motion at all."""
        return cls(global_amplitude_px=0.0, drift_px_per_frame=0.0, jitter_px=0.0,
                   local_amplitude_px=0.0, intra_frame_blur=False)


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """Camera effects.

    ``counting``: integer Poisson counts (else float: gain-scaled signal plus
    Gaussian read noise ``read_noise_e``). The true per-pixel sensitivity is
    log-normal with ``gain_sigma``; the *gain reference* written out is its
    inverse, multiplicative (K2/K3 and MotionCor ``-Gain`` convention:
    corrected = raw × gain). Hot pixels fire at ``hot_pixel_rate`` counts per
    frame on top of the signal; dead columns read zero.
    """

    counting: bool = True
    gain_sigma: float = 0.05
    n_hot_pixels: int = 0
    hot_pixel_rate: float = 5.0
    n_dead_columns: int = 0
    mtf: bool = True
    mtf_rolloff: float = 0.0
    read_noise_e: float = 0.0

    def __post_init__(self) -> None:
        _check(0.0 <= self.gain_sigma < 1.0, "gain_sigma must be in [0, 1)")
        _check(self.n_hot_pixels >= 0 and self.n_dead_columns >= 0, "defect counts must be >= 0")
        _check(self.hot_pixel_rate >= 0 and self.read_noise_e >= 0 and self.mtf_rolloff >= 0,
               "rates, noise and roll-off must be >= 0")

    @classmethod
    def ideal(cls) -> "DetectorSpec":
        """A perfect counting detector: no gain variation, no defects, no MTF."""
        return cls(gain_sigma=0.0, n_hot_pixels=0, n_dead_columns=0, mtf=False)


@dataclass(frozen=True, slots=True)
class MovieSpec:
    """One dose-fractionated exposure.

    ``dose_per_frame_e_per_a2`` is the electron dose per frame at the specimen;
    ``pre_exposure_e_per_a2`` the dose received before the first frame (damage).
    """

    shape: tuple[int, int] = (512, 512)
    n_frames: int = 20
    pixel_size_angstrom: float = 1.0
    dose_per_frame_e_per_a2: float = 1.0
    pre_exposure_e_per_a2: float = 0.0
    optics: OpticsSpec = field(default_factory=OpticsSpec)
    specimen: SpecimenSpec = field(default_factory=SpecimenSpec)
    motion: MotionSpec = field(default_factory=MotionSpec)
    detector: DetectorSpec = field(default_factory=DetectorSpec)
    radiation_damage: bool = True

    def __post_init__(self) -> None:
        _check(len(self.shape) == 2 and all(int(s) >= 8 for s in self.shape),
               f"shape must be (ny, nx) with sides >= 8, got {self.shape}")
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        _check(self.n_frames >= 1, "n_frames must be >= 1")
        _check(self.pixel_size_angstrom > 0, "pixel size must be positive")
        _check(self.dose_per_frame_e_per_a2 > 0, "dose per frame must be positive")
        _check(self.pre_exposure_e_per_a2 >= 0, "pre-exposure must be >= 0")

    @property
    def counts_per_pixel_per_frame(self) -> float:
        """Mean electrons per pixel per frame on an empty area."""
        return self.dose_per_frame_e_per_a2 * self.pixel_size_angstrom**2
