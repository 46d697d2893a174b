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
from pathlib import Path

from django.db import transaction

from semc import models as m
from semc.base import units
from semc.dbsettings import LEGINON
from semc.models.codecs import seq_encode

__all__ = ["session_rows_write_leginon"]

logger = logging.getLogger(__name__)


def _instruments(plan) -> tuple[m.InstrumentData, m.InstrumentData]:
    optics = plan.exposures[0].movie.optics
    tem = (m.InstrumentData.objects.filter(name="SimKrios", hostname="semc-sim").first()
           or m.InstrumentData.objects.create(name="SimKrios", hostname="semc-sim",
                                              cs=units.metre_from_mm(optics.cs_mm)))
    camera = (m.InstrumentData.objects.filter(name=plan.camera.instrument_name, hostname="semc-sim").first()
              or m.InstrumentData.objects.create(name=plan.camera.instrument_name, hostname="semc-sim",
                                                 pixelmax=255))
    return tem, camera


def _session(plan) -> tuple[m.SessionData, m.SessionData]:
    user = m.UserData.objects.filter(username="semc-sim").first() or m.UserData.objects.create(
        username="semc-sim", firstname="SEMC", lastname="Simulator")
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


def _project(session: m.SessionData) -> None:
    from django.conf import settings

    if m.ProjectExperiment.objects.filter(session_id=session.pk).exists():
        return
    appiondb = settings.SEMC_CONFIG["database.appion"]
    row = m.ProcessingDB.objects.filter(appiondb=appiondb).select_related("project").order_by("id").first()
    project = row.project if row is not None and row.project else None
    if project is None:
        project = m.Project.objects.create(name="SEMC", short_description="default project")
        m.ProcessingDB.objects.create(project=project, appiondb=appiondb)
    m.ProjectExperiment.objects.create(project=project, session_id=session.pk)


def _preset(plan, session, tem, camera, exposure) -> m.PresetData:
    movie = exposure.movie
    dose = units.e_per_m2_from_e_per_a2(movie.dose_per_frame_e_per_a2 * movie.n_frames)
    ny, nx = plan.camera.shape
    existing = m.PresetData.objects.filter(session=session, name=plan.spec.preset_name).order_by("-id").first()
    if existing is not None and existing.dose == dose:
        return existing
    return m.PresetData.objects.create(
        session=session, name=plan.spec.preset_name, number=0, tem=tem, ccdcamera=camera, magnification=105000,
        dose=dose, defocus=-units.metre_from_angstrom(_mean_defocus(movie)), save_frames=True,
        exposure_time=movie.n_frames * plan.camera.frame_time_ms, frame_time=plan.camera.frame_time_ms,
        dimension_x=nx, dimension_y=ny, binning_x=plan.camera.binning, binning_y=plan.camera.binning,
        offset_x=0, offset_y=0)


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
        movie = exposure.movie
        if not m.PixelSizeCalibrationData.objects.filter(tem=tem, ccdcamera=camera, magnification=105000).exists():
            m.PixelSizeCalibrationData.objects.create(
                session=session, tem=tem, ccdcamera=camera, magnification=105000,
                high_tension=int(units.volt_from_kv(movie.optics.voltage_kv)),
                pixelsize=units.metre_from_angstrom(plan.camera.pixel_size_angstrom) / plan.camera.binning)
        preset = _preset(plan, session, tem, camera, exposure)
        scope = m.ScopeEMData.objects.create(
            session=session, tem=tem, magnification=105000, high_tension=int(units.volt_from_kv(movie.optics.voltage_kv)),
            defocus=-units.metre_from_angstrom(_mean_defocus(movie)), stage_a=0.0, system_time=acquired_at)
        ny, nx = movie.shape
        camera_row = m.CameraEMData.objects.create(
            session=session, ccdcamera=camera, dimension_x=nx, dimension_y=ny, binning_x=plan.camera.binning,
            binning_y=plan.camera.binning, offset_x=0, offset_y=0, nframes=movie.n_frames,
            frame_time=plan.camera.frame_time_ms, exposure_time=movie.n_frames * plan.camera.frame_time_ms,
            save_frames=True, eer_frames=exposure.fmt == "eer", tiff_frames=exposure.fmt == "tiff",
            frame_flip=False, frame_rotate=0, pixel_size_x=plan.camera.physical_pixel_m,
            pixel_size_y=plan.camera.physical_pixel_m, system_time=acquired_at)
        image = m.AcquisitionImageData.objects.create(
            session=session, preset=preset, scope=scope, camera=camera_row, corrector_plan=corrector, norm=norm,
            filename=exposure.filename, image=f"{exposure.filename}.mrc", label="Exposure", pixeltype="float32",
            pixels=nx * ny, use_frames=seq_encode(range(movie.n_frames)))
    _project(session)
    logger.info("session=%s exposure=%s registered as %s", plan.spec.name, exposure.filename, image.pk)
    return image.pk
