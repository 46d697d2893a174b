"""Storing motion-correction results exactly as classic Appion does (compat §2.3–§2.4, §3.4, §5.4).

Per exposure, in this order: the aligned sums are placed in the session's image path
(hard link, or a copy across file systems, R11) and the motioncorr-format log is written
to the run directory; then, in one Leginon transaction, the aligned camera, preset and
image rows (``-a`` and ``-a-DW``) and the ice-thickness copies; then, in one Appion
transaction, the trajectory and drift statistics, the DW pair and, last, the non-DW pair
row that marks the exposure done. Every step is get-or-create on natural keys, so a
repeated store (a crash in between, a duplicate result) changes nothing.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from semc import models as m
from semc.base import ledger
from semc.base.relion_star import (
    Optics,
    accumulated_motion_angstrom,
    corrected_micrographs_table,
    star_write,
)
from semc.base.store import path_get_or_create
from semc.dbsettings import LEGINON
from semc.models.codecs import seq_decode, seq_encode
from semc.models.routers import current_appion_alias
from semc.motioncorrection.calc.appion import (
    AxisGeometry,
    aligned_axis_geometry,
    aligned_filename,
    aligned_preset_name,
    motioncorr_log_text,
    motioncorr_positions,
    use_frames_for_aligned,
)
from semc.motioncorrection.calc.external_log import (
    align_stats_from_positions,
    frame_trajectory_from_positions,
)

__all__ = ["MotionCorrectionRunState", "run_prepare", "ddstack_run_ensure", "done_ids", "outcome_save",
           "file_place", "view_update"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MotionCorrectionRunState:
    ddstackrun: m.ApDDStackRunData
    rundir: str
    label: str
    extra_bin: int
    keep_run_sums: bool = False


def ddstack_run_ensure(*, session_id: int, runname: str, rundir: str, preset: str, extra_bin: int,
                       method: str) -> m.ApDDStackRunData:
    """The run's ApDDStackRunData, with its parameters row created first (not later, defect D18)."""
    params = (m.ApDDStackParamsData.objects.filter(preset=preset, align=True, bin=extra_bin, method=method)
              .order_by("id").first()
              or m.ApDDStackParamsData.objects.create(preset=preset, align=True, bin=extra_bin, method=method))
    path = path_get_or_create(rundir)
    run = m.ApDDStackRunData.objects.filter(runname=runname, session_id=session_id, path=path).order_by("id").first()
    return run or m.ApDDStackRunData.objects.create(runname=runname, params=params, session_id=session_id, path=path)


def run_prepare(controller) -> MotionCorrectionRunState:
    config = controller.params.pipeline.motioncorrection
    extra_bin = int(round(config.params.output_bin))
    run = ddstack_run_ensure(session_id=controller.session.pk, runname=controller.params.runname,
                             rundir=controller.run.rundir, preset=controller.params.preset or "",
                             extra_bin=extra_bin, method=controller.params.engines.get("motioncorrection", "builtin"))
    return MotionCorrectionRunState(ddstackrun=run, rundir=controller.run.rundir,
                                    label=controller.params.parameters.get("alignlabel", "a"), extra_bin=extra_bin)


def done_ids(state: MotionCorrectionRunState) -> set[int]:
    """Sources with a non-DW pair row in this run (the row written last)."""
    pairs = list(m.ApDDAlignImagePairData.objects.filter(ddstackrun=state.ddstackrun)
                 .values_list("source_id", "result_id"))
    results = dict(m.AcquisitionImageData.objects.filter(id__in=[r for _, r in pairs]).values_list("id", "filename"))
    return {s for s, r in pairs if r in results and not results[r].endswith("-DW")}


def file_place(source: str, directory: str, name: str) -> str:
    """Put ``source`` into ``directory`` as ``name`` (+ ``_vNN`` if another file holds that name).

    Hard link on the same file system, else a copy written under a temporary name and renamed.
    A file already there that is this very file (a repeated store) is reused.
    """
    stem = name[:-4] if name.endswith(".mrc") else name
    for version in range(0, 100):
        candidate = Path(directory) / (f"{stem}.mrc" if version == 0 else f"{stem}_v{version:02d}.mrc")
        if candidate.exists():
            if os.path.samefile(candidate, source) or filecmp.cmp(candidate, source, shallow=False):
                return candidate.name
            continue
        try:
            os.link(source, candidate)
        except OSError:
            tmp = candidate.with_name(f".{candidate.name}.tmp{os.getpid()}")
            shutil.copy2(source, tmp)
            os.replace(tmp, candidate)
        return candidate.name
    raise FileExistsError(f"no free version of {name} in {directory}")


def _copy_row(instance, **overrides):
    data = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields
            if f.attname not in ("id", "timestamp")}
    data.update(overrides)
    return type(instance).objects.create(**data)


def _aligned_camera(raw: m.AcquisitionImageData, state: MotionCorrectionRunState, shape: tuple[int, int]):
    camera = raw.camera
    x = aligned_axis_geometry(AxisGeometry(camera.dimension_x or shape[1], camera.binning_x or 1, camera.offset_x or 0),
                              extra_bin=state.extra_bin)
    y = aligned_axis_geometry(AxisGeometry(camera.dimension_y or shape[0], camera.binning_y or 1, camera.offset_y or 0),
                              extra_bin=state.extra_bin)
    if (y.dimension, x.dimension) != tuple(shape):
        logger.warning("exposure=%s aligned sum is %s, camera geometry says %s", raw.pk, shape,
                       (y.dimension, x.dimension))
    summed = seq_decode(camera.use_frames) or tuple(range(camera.nframes or 0))
    use_frames = use_frames_for_aligned(summed, camera.nframes or len(summed))
    return dict(dimension_x=shape[1], dimension_y=shape[0], binning_x=x.binning, binning_y=y.binning,
                offset_x=x.offset, offset_y=y.offset, align_frames=True,
                use_frames=seq_encode(use_frames) if use_frames is not None else None)


def _aligned_image(raw: m.AcquisitionImageData, state, geometry: dict, *, dose_weighted: bool, file_name: str):
    """Aligned camera, preset and image rows for one sum (get-or-create by session + names)."""
    preset_name = aligned_preset_name(raw.preset.name if raw.preset else None, label=state.label,
                                      dose_weighted=dose_weighted)
    filename = file_name[:-4]
    existing = m.AcquisitionImageData.objects.filter(session_id=raw.session_id, filename=filename).first()
    if existing is not None:
        return existing
    camera = _copy_row(raw.camera, **geometry)
    preset = m.PresetData.objects.filter(session_id=raw.session_id, name=preset_name).order_by("-id").first()
    if preset is None:
        base = raw.preset if raw.preset else m.PresetData(session_id=raw.session_id)
        overrides = dict(name=preset_name, dimension_x=geometry["dimension_x"], dimension_y=geometry["dimension_y"],
                         binning_x=geometry["binning_x"], binning_y=geometry["binning_y"],
                         offset_x=geometry["offset_x"], offset_y=geometry["offset_y"],
                         exposure_time=raw.camera.exposure_time)
        preset = _copy_row(base, **overrides) if raw.preset else m.PresetData.objects.create(
            session_id=raw.session_id, **overrides)
    image = _copy_row(raw, preset_id=preset.pk, camera_id=camera.pk, filename=filename, image=file_name)
    for model in (m.ObjIceThicknessData, m.ZeroLossIceThicknessData):
        for row in model.objects.filter(image_id=raw.pk):
            _copy_row(row, image_id=image.pk)
    return image


def outcome_save(state: MotionCorrectionRunState, exposure_id: int, outcome, pipeline_outcome=None) -> dict[str, Any]:
    """Store one exposure's motion correction; returns a small summary for the ledger."""
    raw = m.AcquisitionImageData.objects.select_related("session", "preset", "camera").get(pk=exposure_id)
    image_path = raw.session.image_path
    names = {}
    for dose_weighted, source in ((False, outcome.sum_path), (True, outcome.dose_weighted_path)):
        if source:
            preset = aligned_preset_name(raw.preset.name if raw.preset else None, label=state.label,
                                         dose_weighted=dose_weighted)
            target = aligned_filename(raw.filename, raw.preset.name if raw.preset else None, preset) + ".mrc"
            names[dose_weighted] = file_place(source, image_path, target)
    positions = motioncorr_positions(outcome.shifts_px, output_bin=outcome.output_bin)
    log_path = Path(state.rundir) / f"{raw.filename}_st_Log.txt"
    tmp = log_path.with_name(f".{log_path.name}.tmp")
    tmp.write_text(motioncorr_log_text(positions, throw=outcome.first_frame))
    os.replace(tmp, log_path)
    geometry = _aligned_camera(raw, state, outcome.output_shape)
    with transaction.atomic(using=LEGINON):
        images = {dw: _aligned_image(raw, state, geometry, dose_weighted=dw, file_name=name)
                  for dw, name in names.items()}
    stats = align_stats_from_positions(positions, aligned_pixel_size_angstrom=outcome.output_pixel_size_angstrom)
    listed = frame_trajectory_from_positions(positions)
    with transaction.atomic(using=current_appion_alias.get()):
        aligned = images[False]
        trajectory = (m.ApDDFrameTrajectoryData.objects.filter(image_id=aligned.pk, ddstackrun=state.ddstackrun).first()
                      or m.ApDDFrameTrajectoryData.objects.create(
                          image_id=aligned.pk, ddstackrun=state.ddstackrun,
                          pos_x=seq_encode([round(v, 5) for v in listed.pos_x], as_list=True),
                          pos_y=seq_encode([round(v, 5) for v in listed.pos_y], as_list=True),
                          last_x=listed.last_x, last_y=listed.last_y, number_of_positions=listed.number_of_positions,
                          reference_index=listed.reference_index))
        top = list(stats.top_shift_values) + [None] * (3 - len(stats.top_shift_values))
        index = list(stats.top_shift_indices) + [None] * (3 - len(stats.top_shift_indices))
        m.ApDDAlignStatsData.objects.get_or_create(
            image_id=aligned.pk, ddstackrun=state.ddstackrun,
            defaults=dict(trajectory=trajectory, apix=stats.apix,
                          top_shift1_value=top[0], top_shift2_value=top[1], top_shift3_value=top[2],
                          top_shift1_index=index[0], top_shift2_index=index[1], top_shift3_index=index[2],
                          median_shift_value=stats.median_shift_value))
        for dw in (True, False):  # the non-DW pair, which marks the exposure done, last
            if dw in images:
                m.ApDDAlignImagePairData.objects.get_or_create(source_id=raw.pk, result_id=images[dw].pk,
                                                               ddstackrun=state.ddstackrun)
    if not state.keep_run_sums:
        for path in (outcome.sum_path, outcome.dose_weighted_path):
            if path and os.path.exists(path):
                os.unlink(path)  # the image path holds the link or copy
    total, early, late = accumulated_motion_angstrom(positions, pixel_size_angstrom=outcome.output_pixel_size_angstrom,
                                                     dose_per_frame=outcome.dose_per_frame_e_per_a2)
    return {"aligned_id": images[False].pk, "aligned_dw_id": images[True].pk if True in images else None,
            "aligned_filename": images[False].filename,
            "micrograph": os.path.join(image_path, images[False].image),
            "drift_total_px": round(total / outcome.output_pixel_size_angstrom, 3),
            "drift_max_step_px": round(stats.top_shift_values[0], 3),
            "accum_motion_total_A": round(total, 4), "accum_motion_early_A": round(early, 4),
            "accum_motion_late_A": round(late, 4), "pixel_size_A": outcome.output_pixel_size_angstrom,
            "input_pixel_size_A": outcome.input_pixel_size_angstrom, "voltage_kv": outcome.voltage_kv,
            "cs_mm": outcome.cs_mm}


def view_update(state: MotionCorrectionRunState, run) -> None:
    """Rewrite ``<rundir>/corrected_micrographs.star`` from the run's stored results."""
    results = ledger.done_results(run, "motioncorrection", having="micrograph")
    if not results:
        return
    first = results[0]
    optics = Optics(pixel_size_angstrom=first["pixel_size_A"], original_pixel_size_angstrom=first["input_pixel_size_A"],
                    voltage_kv=first["voltage_kv"], cs_mm=first["cs_mm"], amplitude_contrast=0.1)
    rows = [{"micrograph": r["micrograph"], "total": r["accum_motion_total_A"], "early": r["accum_motion_early_A"],
             "late": r["accum_motion_late_A"]} for r in results]
    star_write(Path(state.rundir) / "corrected_micrographs.star", optics, corrected_micrographs_table(rows))
