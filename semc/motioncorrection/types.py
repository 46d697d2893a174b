"""Typed parameters and results of motion correction.

Units are in the names; shifts are in pixels of the *input movie* (after EER
up-sampling) unless a name says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from semc.base.errors import InvalidParameters

__all__ = ["CORRELATION_WEIGHTINGS", "MotionCorrectionParams", "GlobalMotion", "MotionCorrectionResult"]

_STEP = "motioncorrection"

#: values of ``MotionCorrectionParams.correlation_weighting``
CORRELATION_WEIGHTINGS = ("ssnr", "bfactor")


def _bad(message: str) -> InvalidParameters:
    return InvalidParameters(message, step=_STEP)


@dataclass(frozen=True, slots=True)
class MotionCorrectionParams:
    """How to align and sum one movie (MotionCor3 meanings and defaults).

    Attributes
    ----------
    pixel_size_angstrom
        Pixel size of the input movie (``-PixSize``); needed for dose weighting.
    voltage_kv
        Acceleration voltage (``-kV``).
    dose_per_frame_e_per_a2
        Dose per (rendered) frame (``-FmDose``); 0 disables dose weighting.
    frame_doses_e_per_a2
        Optional per-frame doses (from an FmIntFile); overrides ``dose_per_frame``.
    initial_dose_e_per_a2
        Pre-exposure (``-InitDose``).
    patches_xy, patch_overlap_percent
        ``-Patch cols rows [overlap]``; (0, 0) or (1, 1) = global alignment only.
    iterations, tolerance_px
        ``-Iter`` (15) and ``-Tol`` (0.1 px of the input movie).
    bfactor_global_px2, bfactor_local_px2
        ``-Bft`` (500, 100), in pixel^2 of the alignment stack.
    phase_only
        ``-PhaseOnly``.
    group_global, group_local
        ``-Group`` (1, 4).
    reference_frame
        ``-FmRef``: -1 = central frame, otherwise a 0-based index of the processed frames.
    throw_frames, truncate_frames
        ``-Throw`` / ``-Trunc``: frames dropped at the start / end.
    output_bin
        ``-FtBin``: Fourier binning of the output sums (>= 1).
    alignment_size_px
        Short side of the binned stack that alignment runs on (MotionCor: 2048).
    dose_range_sum_e_per_a2
        ``-SumRange lo hi``: also make the ``_DWS`` sum of frames in that dose range.
    split_sum
        ``-SplitSum``: also make odd and even frame sums.
    output_stack
        ``-OutStack``: also return the aligned frames (slow: one inverse FFT per frame).
    mag_anisotropy
        ``-Mag major minor angle_deg``: stretch to undo (1, 1, 0 = none).
    smooth_trajectory
        Smooth the whole-frame trajectory in time (GCV smoothing spline in sqrt(t)).
    in_frame_motion
        ``-InFmMotion 1``: weight every frame's spectrum by the transfer function of its own
        motion blur, sinc(|m| (k . m/|m|)) with m its motion during the frame (MotionCor3's
        motion "deconvolution"); the sums then take each frequency mostly from the frames
        that did not smear it. Uses the per-frame Fourier summation.
    correct_interpolation
        ``-CorrInterp 1``: divide the sums' spectra by sinc(pi |k|)^(1/8), MotionCor3's
        compensation of the attenuation by bilinear resampling.
    correlation_weighting
        How each frequency of a correlation is weighted: ``"ssnr"`` (default) by the
        spectral signal-to-noise ratio measured from the movie itself at every
        iteration (a matched filter; the B-factor then only bounds the frequencies
        used), or ``"bfactor"``: MotionCor's exp(-B f^2 / 2) alone.
    align
        ``-Align``: False sums the frames without aligning them (shifts all zero).
    fft_workers
        Threads for ``scipy.fft`` and the kernels; None = ``semc.base.parallel.fft_workers()``.
    """

    pixel_size_angstrom: float | None = None
    voltage_kv: float = 300.0
    dose_per_frame_e_per_a2: float = 0.0
    frame_doses_e_per_a2: tuple[float, ...] | None = None
    initial_dose_e_per_a2: float = 0.0
    patches_xy: tuple[int, int] = (0, 0)
    patch_overlap_percent: float = 0.0
    iterations: int = 15
    tolerance_px: float = 0.1
    bfactor_global_px2: float = 500.0
    bfactor_local_px2: float = 100.0
    phase_only: bool = False
    group_global: int = 1
    group_local: int = 4
    reference_frame: int = -1
    throw_frames: int = 0
    truncate_frames: int = 0
    output_bin: float = 1.0
    alignment_size_px: int = 2048
    dose_range_sum_e_per_a2: tuple[float, float] | None = None
    split_sum: bool = False
    output_stack: bool = False
    mag_anisotropy: tuple[float, float, float] = (1.0, 1.0, 0.0)
    smooth_trajectory: bool = True
    in_frame_motion: bool = False
    correct_interpolation: bool = False
    correlation_weighting: str = "ssnr"
    align: bool = True
    fft_workers: int | None = None

    def __post_init__(self) -> None:
        if self.pixel_size_angstrom is not None and not self.pixel_size_angstrom > 0:
            raise _bad(f"pixel_size_angstrom must be > 0, got {self.pixel_size_angstrom}")
        if not self.voltage_kv > 0:
            raise _bad(f"voltage_kv must be > 0, got {self.voltage_kv}")
        for name in ("dose_per_frame_e_per_a2", "initial_dose_e_per_a2", "patch_overlap_percent",
                     "bfactor_global_px2", "bfactor_local_px2", "tolerance_px"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise _bad(f"{name} must be finite and >= 0, got {value}")
        if self.frame_doses_e_per_a2 is not None and any(d < 0 for d in self.frame_doses_e_per_a2):
            raise _bad("frame_doses_e_per_a2 must be >= 0")
        if len(self.patches_xy) != 2 or min(self.patches_xy) < 0:
            raise _bad(f"patches_xy must be two integers >= 0, got {self.patches_xy}")
        for name in ("iterations", "group_global", "group_local", "alignment_size_px"):
            if getattr(self, name) < 1:
                raise _bad(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.throw_frames < 0 or self.truncate_frames < 0:
            raise _bad("throw_frames and truncate_frames must be >= 0")
        if self.reference_frame < -1:
            raise _bad(f"reference_frame must be -1 or a frame index, got {self.reference_frame}")
        if not self.output_bin >= 1:
            raise _bad(f"output_bin must be >= 1, got {self.output_bin}")
        if self.dose_range_sum_e_per_a2 is not None:
            lo, hi = self.dose_range_sum_e_per_a2
            if not 0 <= lo < hi:
                raise _bad(f"dose_range_sum_e_per_a2 must be 0 <= lo < hi, got {(lo, hi)}")
        major, minor, _ = self.mag_anisotropy
        if not (major > 0 and minor > 0):
            raise _bad(f"mag_anisotropy scales must be > 0, got {self.mag_anisotropy}")
        if self.correlation_weighting not in CORRELATION_WEIGHTINGS:
            raise _bad(f"correlation_weighting must be one of {CORRELATION_WEIGHTINGS}, "
                       f"got {self.correlation_weighting!r}")
        if self.fft_workers is not None and self.fft_workers < 1:
            raise _bad(f"fft_workers must be >= 1, got {self.fft_workers}")
        if self.dose_weighting and self.pixel_size_angstrom is None:
            raise _bad("dose weighting needs pixel_size_angstrom")

    @property
    def dose_weighting(self) -> bool:
        """True when a dose is given (per frame or as a list)."""
        if self.frame_doses_e_per_a2 is not None:
            return any(d > 0 for d in self.frame_doses_e_per_a2)
        return self.dose_per_frame_e_per_a2 > 0

    @property
    def local(self) -> bool:
        """True when patch alignment is asked for (more than one patch each way)."""
        return self.patches_xy[0] > 1 and self.patches_xy[1] > 1


@dataclass(frozen=True, slots=True)
class GlobalMotion:
    """Whole-frame motion of a movie.

    Attributes
    ----------
    shifts_px
        Per processed frame, the (x, y) *correction* applied (MotionCor's sign:
        minus the content motion), pixels of the input movie, zero at the
        reference frame.
    first_frame
        0-based index in the movie of the first processed frame (``-Throw``).
    reference_frame
        0-based index, within the processed frames, of the frame kept in place.
    """

    shifts_px: tuple[tuple[float, float], ...]
    first_frame: int
    reference_frame: int

    def __post_init__(self) -> None:
        if not self.shifts_px or not 0 <= self.reference_frame < len(self.shifts_px):
            raise _bad("reference_frame must index shifts_px")


@dataclass(frozen=True, slots=True)
class MotionCorrectionResult:
    """What `semc.motioncorrection.api.correct_movie_file` returns.

    Attributes
    ----------
    movie_path
        The input movie.
    motion
        Whole-frame shifts (`GlobalMotion`).
    local_model
        The fitted local model (a ``LocalMotionModel``) or None without patches.
    output_paths
        Written files by kind: ``sum``, ``dose_weighted``, ``dose_selected``,
        ``odd``, ``even``, ``stack``.
    timings_s
        Wall time per stage (read, align_global, align_local, sum, write, total).
    peak_memory_bytes
        Peak resident memory of the process when the call returned (ru_maxrss).
    pixel_size_angstrom
        Pixel size of the written sums (after ``-FtBin``), None if unknown.
    n_frames
        Frames in the movie (before Throw/Trunc).
    """

    movie_path: str
    motion: GlobalMotion
    local_model: object | None
    output_paths: dict[str, str] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    peak_memory_bytes: int = 0
    pixel_size_angstrom: float | None = None
    n_frames: int = 0
