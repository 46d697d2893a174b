"""Leginon's rows for a simulated session, written the way Leginon writes them (compat §1.4).

One call per exposure, after its files are complete: the session, instruments, reference
session, gain (NormImageData), corrector plan, calibration and project rows are created
once (get-or-create on natural keys), then the exposure's ScopeEMData, CameraEMData,
PresetData (a new preset row only when the preset changes) and AcquisitionImageData.
Units are Leginon's: metres, volts, e/m², ms, radians.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from semc import models as m
from semc.base import units
from semc.dbsettings import LEGINON
from semc.models.codecs import seq_encode

__all__ = [
    "ExposureRecord",
    "exposure_rows_create",
    "instrument_ensure",
    "pixel_calibration_ensure",
    "preset_ensure",
    "project_attach",
    "session_rows_write_leginon",
    "user_ensure",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExposureRecord:
    """One exposure's values in Leginon's units (compat §1.4): what :func:`exposure_rows_create` writes.

    Sizes are pixels of the saved frames at ``binning``; times in ms; ``high_tension_v`` in volts;
    ``defocus_m`` negative = underfocus; ``dose_e_per_m2`` the exposure's total dose; stage
    angles in radians and positions in metres; ``acquired_at`` in epoch seconds.
    """

    filename: str
    preset_name: str
    nx: int
    ny: int
    n_frames: int
    fmt: str  # mrc | tiff | eer
    high_tension_v: int
    magnification: int
    binning: int = 1
    frame_time_ms: float | None = None
    exposure_time_ms: float | None = None
    defocus_m: float | None = None
    dose_e_per_m2: float | None = None
    physical_pixel_m: float | None = None
    acquired_at: float | None = None
    stage_a: float = 0.0
    stage_b: float | None = None
    stage_xyz: tuple[float, float, float] | None = None
    spot_size: int | None = None
    probe_mode: str | None = None
    energy_filter: bool | None = None
    energy_filter_width: float | None = None
    frame_rotate: int = 0
    frame_flip: bool = False
    frames_name: str | None = None
    label: str = "Exposure"


def user_ensure(username: str, **names: str) -> m.UserData:
    """The Leginon user of that name (created with ``names``: firstname, lastname, email)."""
    return (m.UserData.objects.filter(username=username).order_by("id").first()
            or m.UserData.objects.create(username=username, **names))


def instrument_ensure(name: str, hostname: str, **values) -> m.InstrumentData:
    """The instrument (TEM or camera) of that name and host (created with ``values``: cs in m, pixelmax)."""
    return (m.InstrumentData.objects.filter(name=name, hostname=hostname).order_by("id").first()
            or m.InstrumentData.objects.create(name=name, hostname=hostname, **values))


def _instruments(plan) -> tuple[m.InstrumentData, m.InstrumentData]:
    optics = plan.exposures[0].movie.optics
    tem = instrument_ensure("SimKrios", "semc-sim", cs=units.metre_from_mm(optics.cs_mm))
    camera = instrument_ensure(plan.camera.instrument_name, "semc-sim", pixelmax=255)
    return tem, camera


def _session(plan) -> tuple[m.SessionData, m.SessionData]:
    user = user_ensure("semc-sim", firstname="SEMC", lastname="Simulator")
    session = m.SessionData.objects.filter(name=plan.spec.name).order_by("id").first()
    if session is None:
        session = m.SessionData.objects.create(name=plan.spec.name, user=user, image_path=str(plan.image_path),
                                               frame_path=str(plan.frame_path), hidden=False,
                                               comment=f"simulated session (seed {plan.spec.seed})")
    ref_name = f"{plan.spec.name}_ref"
    reference = m.SessionData.objects.filter(name=ref_name).order_by("id").first() or m.SessionData.objects.create(
        name=ref_name, user=user, image_path=str(plan.reference_image_path), hidden=True,
        comment="reference images")
    return session, reference


def _references(plan, reference: m.SessionData, camera: m.InstrumentData, files, detector: dict):
    existing = m.NormImageData.objects.filter(session=reference, image=Path(plan.gain_path).name).first()
    if existing is not None:
        return existing, existing.corrector_plan
    ny, nx = plan.camera.shape
    ref_camera = m.CameraEMData.objects.create(session=reference, ccdcamera=camera, dimension_x=nx, dimension_y=ny,
                                               binning_x=plan.camera.binning, binning_y=plan.camera.binning,
                                               offset_x=0, offset_y=0, nframes=1)
    corrector = m.CorrectorPlanData.objects.create(
        session=reference, camera=ref_camera, bad_rows=seq_encode([]),
        bad_cols=seq_encode(sorted(int(c) for c in detector.get("dead_columns", []))),
        bad_pixels=seq_encode([(int(x), int(y)) for x, y in detector.get("hot_pixels_xy", [])]))
    norm = m.NormImageData.objects.create(session=reference, camera=ref_camera, corrector_plan=corrector,
                                          filename=Path(plan.gain_path).stem, image=Path(plan.gain_path).name)
    return norm, corrector


def project_attach(session: m.SessionData, *, project_name: str | None = None) -> m.Project | None:
    """Put the session in a project (once): the named one (created with the configured Appion
    database when missing), else the project of the configured Appion database (or a new default one)."""
    from django.conf import settings

    if m.ProjectExperiment.objects.filter(session_id=session.pk).exists():
        return None
    appiondb = settings.SEMC_CONFIG["database.appion"]
    project = None
    if project_name:
        project = m.Project.objects.filter(name=project_name).order_by("id").first()
    else:
        row = m.ProcessingDB.objects.filter(appiondb=appiondb).select_related("project").order_by("id").first()
        project = row.project if row is not None and row.project else None
    if project is None:
        project = m.Project.objects.create(name=project_name or "SEMC",
                                           short_description="registered by semc watch" if project_name
                                           else "default project")
        m.ProcessingDB.objects.create(project=project, appiondb=appiondb)
    m.ProjectExperiment.objects.create(project=project, session_id=session.pk)
    return project


def _project(session: m.SessionData) -> None:
    project_attach(session)


def preset_ensure(session: m.SessionData, record: ExposureRecord, *, tem, camera) -> m.PresetData:
    """The session's newest preset of ``record.preset_name`` if it still says the same (dose,
    magnification, exposure time, size); else a new preset row, as Leginon writes one per preset edit."""
    existing = m.PresetData.objects.filter(session=session, name=record.preset_name).order_by("-id").first()
    if existing is not None and (existing.dose, existing.magnification, existing.exposure_time,
                                 existing.dimension_x, existing.dimension_y) == (
            record.dose_e_per_m2, record.magnification, record.exposure_time_ms, record.nx, record.ny):
        return existing
    return m.PresetData.objects.create(
        session=session, name=record.preset_name, number=0, tem=tem, ccdcamera=camera,
        magnification=record.magnification, dose=record.dose_e_per_m2, defocus=record.defocus_m, save_frames=True,
        exposure_time=record.exposure_time_ms, frame_time=record.frame_time_ms, dimension_x=record.nx,
        dimension_y=record.ny, binning_x=record.binning, binning_y=record.binning, offset_x=0, offset_y=0,
        spot_size=record.spot_size, probe_mode=record.probe_mode, energy_filter=record.energy_filter,
        energy_filter_width=record.energy_filter_width)


def pixel_calibration_ensure(session: m.SessionData, *, tem, camera, magnification: int, high_tension_v: int,
                             pixelsize_m: float, replace_different: bool = True) -> None:
    """A PixelSizeCalibrationData row saying ``pixelsize_m`` (m per unbinned pixel) for (magnification,
    TEM, camera): kept when the newest one agrees (or, with ``replace_different`` False, when any exists)."""
    newest = (m.PixelSizeCalibrationData.objects.filter(tem=tem, ccdcamera=camera, magnification=magnification)
              .order_by("-timestamp", "-id").first())
    if newest is not None and (not replace_different or abs(newest.pixelsize - pixelsize_m) <= 1e-6 * pixelsize_m):
        return
    m.PixelSizeCalibrationData.objects.create(session=session, tem=tem, ccdcamera=camera, magnification=magnification,
                                              high_tension=high_tension_v, pixelsize=pixelsize_m)


def exposure_rows_create(session: m.SessionData, record: ExposureRecord, *, tem, camera, preset, norm=None,
                         corrector=None) -> m.AcquisitionImageData:
    """ScopeEMData, CameraEMData and AcquisitionImageData of one exposure (call inside a Leginon
    transaction; returns the existing image when the session already has that filename)."""
    done = m.AcquisitionImageData.objects.filter(session=session, filename=record.filename).first()
    if done is not None:
        return done
    x, y, z = record.stage_xyz or (None, None, None)
    scope = m.ScopeEMData.objects.create(
        session=session, tem=tem, magnification=record.magnification, high_tension=record.high_tension_v,
        defocus=record.defocus_m, stage_a=record.stage_a, stage_b=record.stage_b, stage_x=x, stage_y=y, stage_z=z,
        spot_size=record.spot_size, probe_mode=record.probe_mode, system_time=record.acquired_at)
    camera_row = m.CameraEMData.objects.create(
        session=session, ccdcamera=camera, dimension_x=record.nx, dimension_y=record.ny, binning_x=record.binning,
        binning_y=record.binning, offset_x=0, offset_y=0, nframes=record.n_frames, frame_time=record.frame_time_ms,
        exposure_time=record.exposure_time_ms, save_frames=True, eer_frames=record.fmt == "eer",
        tiff_frames=record.fmt == "tiff", frame_flip=record.frame_flip, frame_rotate=record.frame_rotate,
        pixel_size_x=record.physical_pixel_m, pixel_size_y=record.physical_pixel_m, system_time=record.acquired_at,
        exposure_timestamp=record.acquired_at, energy_filtered=record.energy_filter,
        energy_filter_width=record.energy_filter_width, frames_name=record.frames_name)
    return m.AcquisitionImageData.objects.create(
        session=session, preset=preset, scope=scope, camera=camera_row, corrector_plan=corrector, norm=norm,
        filename=record.filename, image=f"{record.filename}.mrc", label=record.label, pixeltype="float32",
        pixels=record.nx * record.ny, use_frames=seq_encode(range(record.n_frames)))


def _record(plan, exposure, *, acquired_at: float) -> ExposureRecord:
    movie = exposure.movie
    ny, nx = movie.shape
    return ExposureRecord(
        filename=exposure.filename, preset_name=plan.spec.preset_name, nx=nx, ny=ny, n_frames=movie.n_frames,
        fmt=exposure.fmt, high_tension_v=int(units.volt_from_kv(movie.optics.voltage_kv)), magnification=105000,
        binning=plan.camera.binning, frame_time_ms=plan.camera.frame_time_ms,
        exposure_time_ms=movie.n_frames * plan.camera.frame_time_ms,
        defocus_m=-units.metre_from_angstrom(_mean_defocus(movie)),
        dose_e_per_m2=units.e_per_m2_from_e_per_a2(movie.dose_per_frame_e_per_a2 * movie.n_frames),
        physical_pixel_m=plan.camera.physical_pixel_m, acquired_at=acquired_at)


def _mean_defocus(movie) -> float:
    return 0.5 * (movie.optics.defocus1_angstrom + movie.optics.defocus2_angstrom)


def session_rows_write_leginon(plan, exposure, files, *, acquired_at: float) -> int:
    """Write one exposure's Leginon rows; returns its AcquisitionImageData id (idempotent per filename)."""
    truth = json.loads(Path(files.truth).read_text())
    with transaction.atomic(using=LEGINON):
        session, reference = _session(plan)
        done = m.AcquisitionImageData.objects.filter(session=session, filename=exposure.filename).first()
        if done is not None:
            return done.pk
        tem, camera = _instruments(plan)
        norm, corrector = _references(plan, reference, camera, files, truth.get("detector", {}))
        record = _record(plan, exposure, acquired_at=acquired_at)
        pixel_calibration_ensure(session, tem=tem, camera=camera, magnification=record.magnification,
                                 high_tension_v=record.high_tension_v, replace_different=False,
                                 pixelsize_m=units.metre_from_angstrom(plan.camera.pixel_size_angstrom)
                                 / plan.camera.binning)
        preset = preset_ensure(session, record, tem=tem, camera=camera)
        image = exposure_rows_create(session, record, tem=tem, camera=camera, preset=preset, norm=norm,
                                     corrector=corrector)
    _project(session)
    logger.info("session=%s exposure=%s registered as %s", plan.spec.name, exposure.filename, image.pk)
    return image.pk
