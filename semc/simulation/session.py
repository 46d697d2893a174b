"""Synthetic Leginon-like sessions: a pure planner, file writing at a cadence, and the DB-row hook.

- :func:`session_plan` (pure) turns a :class:`SessionSpec` into a :class:`SessionPlan`:
  Leginon folders (``<root>/leginon/<session>/rawdata`` image path,
  ``<root>/frames/<session>/rawdata`` frame path, a hidden reference session
  ``<session>_ref`` for the gain), one :class:`PlannedExposure` per movie
  (Leginon ``filename``, ``<filename>.frames.<ext>``, seed, defocus, dose,
  motion, arrival offset) and the camera (gain and defects shared by all).
- :func:`arrival_schedule` (pure): regular cadence, multi-shot bursts, pauses,
  jitter, or a replayed list of arrival times.
- :func:`session_run` writes the camera references, then each exposure when its
  arrival time comes (``realtime=True``) or all at once, and calls a rows
  writer after each file is complete (movie first, then the row, as Leginon's
  rawtransfer does).
- :func:`session_rows_write` is the hook that writes Leginon's rows; it is
  implemented with the Django models (see its docstring for its inputs).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from semc.base.errors import InvalidParameters
from semc.simulation.types import DetectorSpec, MotionSpec, MovieSpec, OpticsSpec, SpecimenSpec
from semc.simulation.writers import FORMATS, ExposureFiles, camera_references_write, movie_write

logger = logging.getLogger(__name__)

__all__ = ["ROWS_WRITER_READY", "CameraPreset", "CAMERA_PRESETS", "SessionSpec", "PlannedExposure", "SessionPlan", "arrival_schedule",
           "session_plan", "session_run", "session_rows_write"]


@dataclass(frozen=True, slots=True)
class CameraPreset:
    """A camera as Leginon records it, and how its movies are simulated."""

    instrument_name: str  # InstrumentData.name
    shape: tuple[int, int]  # (ny, nx) of a movie frame
    fmt: str  # mrc | tiff | eer
    pixel_size_angstrom: float
    n_frames: int  # raw frames (EER: detector frames)
    frame_time_ms: float
    physical_pixel_m: float  # CameraEMData pixel size
    binning: int = 1
    eer_raw_frames_per_fraction: int = 40


CAMERA_PRESETS = {
    "small": CameraPreset("SimCam", (1024, 1024), "mrc", 1.0, 10, 100.0, 5.0e-6),  # 512² is too small for CTF
    "k3": CameraPreset("GatanK3", (4092, 5760), "tiff", 0.826, 40, 50.0, 5.0e-6),
    "falcon4-eer": CameraPreset("Falcon4EC", (4096, 4096), "eer", 0.725, 1000, 1000.0 / 248.0, 14.0e-6),
}


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """What session to make. Doses in e/Å² (total per exposure), defocus in µm (positive = underfocus)."""

    name: str
    root: Path
    n_exposures: int = 10
    camera: str = "small"
    fmt: str | None = None  # default: the camera's
    preset_name: str = "enn"
    total_dose_e_per_a2: float = 40.0
    defocus_range_um: tuple[float, float] = (0.8, 2.5)
    max_astigmatism_angstrom: float = 300.0
    motion_strength: float = 1.0
    n_particles: int = 40
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    seed: int = 0
    interval_s: float = 0.0
    burst_size: int = 1
    burst_spacing_s: float = 1.0
    pause_every: int = 0
    pause_s: float = 0.0
    jitter_fraction: float = 0.0
    schedule_s: tuple[float, ...] | None = None  # replayed arrival offsets, overrides the cadence
    hot_pixels: int = 4
    dead_columns: int = 1

    def __post_init__(self) -> None:
        if self.camera not in CAMERA_PRESETS:
            raise InvalidParameters(f"camera must be one of {sorted(CAMERA_PRESETS)}", step="simulation")
        if self.fmt is not None and self.fmt not in FORMATS:
            raise InvalidParameters(f"format must be one of {sorted(FORMATS)}", step="simulation")
        if self.n_exposures < 1 or self.total_dose_e_per_a2 <= 0 or self.interval_s < 0:
            raise InvalidParameters("need >= 1 exposure, a positive dose, interval >= 0", step="simulation")
        lo, hi = self.defocus_range_um
        if not 0 <= lo <= hi:
            raise InvalidParameters("defocus range must satisfy 0 <= min <= max (µm)", step="simulation")
        if self.schedule_s is not None and len(self.schedule_s) < self.n_exposures:
            raise InvalidParameters("the replayed schedule has fewer arrivals than exposures", step="simulation")
        if not self.name or "/" in self.name:
            raise InvalidParameters(f"bad session name {self.name!r}", step="simulation")


@dataclass(frozen=True, slots=True)
class PlannedExposure:
    """One exposure: its Leginon filename, movie path, arrival offset (s), seed and physics."""

    index: int
    filename: str
    movie_path: Path
    image_path: Path  # the integrated image Leginon saves, <image path>/<filename>.mrc
    arrival_offset_s: float
    seed: int
    movie: MovieSpec
    fmt: str
    eer_raw_frames_per_fraction: int


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """Everything a session run writes, and what the DB rows must say."""

    spec: SessionSpec
    camera: CameraPreset
    image_path: Path
    frame_path: Path
    reference_image_path: Path
    gain_path: Path
    defects_text_path: Path
    defects_map_path: Path
    camera_seed: int
    exposures: tuple[PlannedExposure, ...] = field(default_factory=tuple)


def arrival_schedule(
    n: int, *, interval_s: float, burst_size: int = 1, burst_spacing_s: float = 1.0, pause_every: int = 0,
    pause_s: float = 0.0, jitter_fraction: float = 0.0, rng: np.random.Generator | None = None,
) -> list[float]:
    """Arrival offsets (s, from the session start) of ``n`` exposures.

    Bursts of ``burst_size`` exposures ``burst_spacing_s`` apart (multi-shot
    per hole) start every ``interval_s``; after every ``pause_every`` exposures
    comes an extra ``pause_s`` (a grid-square change); each interval is
    stretched by a uniform ±``jitter_fraction``. ``interval_s`` 0 gives all zeros.
    """
    if interval_s == 0:
        return [0.0] * n
    rng = rng or np.random.default_rng(0)
    out, start = [], 0.0
    for i in range(n):
        if i > 0 and i % burst_size == 0:
            start += interval_s * (1.0 + jitter_fraction * rng.uniform(-1, 1))
        if i > 0 and pause_every and i % pause_every == 0:
            start += pause_s
        out.append(round(start + (i % burst_size) * burst_spacing_s, 6))
    return out


def _movie_spec(spec: SessionSpec, cam: CameraPreset, rng: np.random.Generator) -> MovieSpec:
    lo, hi = spec.defocus_range_um
    df = rng.uniform(lo, hi) * 1e4
    astig = rng.uniform(0, spec.max_astigmatism_angstrom)
    s = spec.motion_strength
    return MovieSpec(
        shape=cam.shape, n_frames=cam.n_frames, pixel_size_angstrom=cam.pixel_size_angstrom,
        dose_per_frame_e_per_a2=spec.total_dose_e_per_a2 / cam.n_frames,
        optics=OpticsSpec(voltage_kv=spec.voltage_kv, cs_mm=spec.cs_mm, defocus1_angstrom=df + astig / 2,
                          defocus2_angstrom=df - astig / 2, astigmatism_azimuth_degree=rng.uniform(-90, 90),
                          bfactor_angstrom2=20.0),
        specimen=SpecimenSpec(n_particles=spec.n_particles, models=("globular", "apoferritin", "ribosome"),
                              ice_thickness_angstrom=rng.uniform(250, 600)),
        motion=MotionSpec(global_amplitude_px=4.0 * s, drift_px_per_frame=0.1 * s, jitter_px=0.05 * s,
                          decay_frames=max(cam.n_frames / 10, 1.0), local_amplitude_px=0.0),
        detector=DetectorSpec(n_hot_pixels=spec.hot_pixels, n_dead_columns=spec.dead_columns))


def session_plan(spec: SessionSpec) -> SessionPlan:
    """Plan a session (pure: no files are touched)."""
    cam = CAMERA_PRESETS[spec.camera]
    fmt = spec.fmt or cam.fmt
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed))
    root = Path(spec.root)
    image_path = root / "leginon" / spec.name / "rawdata"
    frame_path = root / "frames" / spec.name / "rawdata"
    ref_path = root / "leginon" / f"{spec.name}_ref" / "rawdata"
    offsets = (list(spec.schedule_s[:spec.n_exposures]) if spec.schedule_s is not None else arrival_schedule(
        spec.n_exposures, interval_s=spec.interval_s, burst_size=spec.burst_size,
        burst_spacing_s=spec.burst_spacing_s, pause_every=spec.pause_every, pause_s=spec.pause_s,
        jitter_fraction=spec.jitter_fraction, rng=rng))
    exposures = []
    for i in range(spec.n_exposures):
        filename = f"{spec.name}_{i + 1:05d}{spec.preset_name}"
        exposures.append(PlannedExposure(
            index=i, filename=filename, movie_path=frame_path / f"{filename}{FORMATS[fmt]}",
            image_path=image_path / f"{filename}.mrc", arrival_offset_s=float(offsets[i]),
            seed=int(rng.integers(0, 2**31 - 1)), movie=_movie_spec(spec, cam, rng), fmt=fmt,
            eer_raw_frames_per_fraction=cam.eer_raw_frames_per_fraction))
    norm = f"{spec.name}_ref_{cam.shape[0]}x{cam.shape[1]}"
    return SessionPlan(spec=spec, camera=cam, image_path=image_path, frame_path=frame_path,
                       reference_image_path=ref_path, gain_path=ref_path / f"{norm}_norm_0.mrc",
                       defects_text_path=ref_path / f"{norm}_defects.txt",
                       defects_map_path=ref_path / f"{norm}_defects.mrc",
                       camera_seed=int(rng.integers(0, 2**31 - 1)), exposures=tuple(exposures))


RowsWriter = Callable[..., None]

#: flipped to True once :func:`session_rows_write` writes rows (the CLI refuses to run without --files-only until then)
ROWS_WRITER_READY = True


def session_rows_write(plan: SessionPlan, exposure: PlannedExposure, files: ExposureFiles, *,
                       acquired_at: float) -> None:
    """Write Leginon's rows for one exposure (idempotent per file name).

    Inputs it gets, and what they map to:

    - ``plan.spec.name`` / ``plan.image_path`` / ``plan.frame_path`` → SessionData
      (``name``, ``image path``, ``frame path``); ``plan.reference_image_path``
      → the hidden reference SessionData of the NormImageData;
    - ``plan.camera`` → InstrumentData (``name``, camera) and CameraEMData
      (``SUBD|dimension`` = shape[::-1], ``SUBD|binning``, ``SUBD|pixel size`` =
      ``physical_pixel_m``, ``nframes`` = ``exposure.movie.n_frames``,
      ``frame time`` = ``frame_time_ms``, ``exposure time`` = n_frames × frame time,
      ``eer frames`` / ``tiff frames`` from ``exposure.fmt``, ``frame flip`` 0,
      ``frame rotate`` 0, ``save frames`` 1);
    - PixelSizeCalibrationData ``pixelsize`` = ``camera.pixel_size_angstrom × 1e-10 / binning`` (m);
    - PresetData (``name`` = ``plan.spec.preset_name``, ``dose`` = total e/Å² × 1e20,
      ``defocus`` = −mean defocus in m, ``exposure time``, ``frame time``);
    - ScopeEMData (``high tension`` = voltage in V, ``defocus`` negative in m,
      stage α 0) and InstrumentData of the TEM (``cs`` = cs_mm × 1e-3 m);
    - AcquisitionImageData (``filename`` = ``exposure.filename``, ``MRC|image`` =
      ``files``' image name ``<filename>.mrc``, ``SEQ|use frames``, timestamp ``acquired_at``);
    - NormImageData (``MRC|image`` = ``plan.gain_path.name`` in the reference
      session), DarkImageData (none: counting cameras), CorrectorPlanData
      (``SEQ|bad_cols`` = dead columns, ``SEQ|bad_pixels`` = hot pixels (x, y),
      both in ``<exposure>.truth.json`` under ``detector``), and the project rows.

    Needs Django set up (the ``semc simulate session`` command does it). Implemented in
    :mod:`semc.simulation.leginon_rows`.
    """
    from semc.simulation.leginon_rows import session_rows_write_leginon

    session_rows_write_leginon(plan, exposure, files, acquired_at=acquired_at)


def session_run(
    plan: SessionPlan, *, realtime: bool, rows_writer: RowsWriter | None = None,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], float] = time.time,
) -> list[ExposureFiles]:
    """Write the camera references, then every exposure (at its arrival time when ``realtime``).

    After each exposure's files are complete, ``rows_writer(plan, exposure,
    files, acquired_at=<epoch s>)`` is called (e.g. :func:`session_rows_write`).
    """
    for d in (plan.image_path, plan.frame_path, plan.reference_image_path):
        d.mkdir(parents=True, exist_ok=True)
    first = plan.exposures[0]
    from semc.simulation.physics.detector import detector_generate
    from semc.simulation.movie import random_streams

    camera = detector_generate(random_streams(plan.camera_seed)["detector"], spec=first.movie.detector,
                               shape=first.movie.shape)
    camera_references_write(camera, first.movie.shape, gain_path=plan.gain_path,
                            defects_path=plan.defects_text_path, defect_map_path=plan.defects_map_path,
                            pixel_size_angstrom=first.movie.pixel_size_angstrom)
    shared = {"gain": plan.gain_path, "defects_text": plan.defects_text_path, "defects_map": plan.defects_map_path}
    start, written = clock(), []
    for exp in plan.exposures:
        if realtime:
            wait = exp.arrival_offset_s - (clock() - start)
            if wait > 0:
                sleep(wait)
        files = movie_write(exp.movie, exp.seed, directory=plan.frame_path, name=exp.filename, fmt=exp.fmt,
                            camera_seed=plan.camera_seed, shared_references=shared,
                            eer_raw_frames_per_fraction=exp.eer_raw_frames_per_fraction,
                            image_sum_path=exp.image_path)
        written.append(files)
        logger.info("session=%s exposure=%s written", plan.spec.name, exp.filename)
        if rows_writer is not None:
            rows_writer(plan, exp, files, acquired_at=wall_clock())
    return written

