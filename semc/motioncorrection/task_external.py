"""Motion correction by an external MotionCor2 / MotionCor3 (engine ``motioncor2``/``motioncor3``).

The production path of compat §5: the engine registry resolves the executable and detects the
version once per worker, the pure builder makes the argv (one element per value), the one runner
runs it with a timeout (raw output kept as ``<rundir>/<filename>_st_Log.motioncor2.txt``), and the
version-pinned parser reads the shifts. Outputs go through the same attempt folder and rename as
the built-in engine, so the controller stores both the same way.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np

from semc.base.errors import LogParseError
from semc.base.exposure import ExposureInputs

__all__ = ["motioncorrection_external_run"]

_STEP = "motioncorrection"


def _defect_map(inputs: ExposureInputs, folder: Path) -> str | None:
    from semc.base.io import defect_mask_from_correctorplan, write_mrc

    if inputs.defects.empty or inputs.camera_dimensions is None:
        return None
    nx, ny = inputs.camera_dimensions
    mask = defect_mask_from_correctorplan((ny, nx), inputs.defects.bad_rows, inputs.defects.bad_cols,
                                          inputs.defects.bad_pixels)
    path = folder / "defect_map.mrc"
    write_mrc(path, mask.astype(np.int8), pixel_size_angstrom=None)
    return str(path)


def _fmintfile(inputs: ExposureInputs, config, folder: Path) -> str | None:
    from semc.motioncorrection.calc.external import fmintfile_text, raw_dose_per_frame_e_per_a2

    if not inputs.eer:
        return None
    dose = raw_dose_per_frame_e_per_a2(total_dose_e_per_a2=inputs.total_dose_e_per_a2, n_raw_frames=inputs.n_frames)
    path = folder / "intfile.txt"
    path.write_text(fmintfile_text(n_raw_frames=inputs.n_frames, rendered_frame_size=config.eer_frames_per_fraction,
                                   dose_per_raw_frame_e_per_a2=dose))
    return str(path)


def _command_params(inputs: ExposureInputs, config, folder: Path, dark: str | None):
    from semc.motioncorrection.calc.external import MotionCor2Params

    p = config.params
    dose = inputs.dose_per_frame_e_per_a2 if (config.dose_weighting and not inputs.eer) else None
    return MotionCor2Params(
        input_path=inputs.movie_path, output_path=str(folder / f"{inputs.filename}_c.mrc"),
        bfactor_global=int(p.bfactor_global_px2), bfactor_local=int(p.bfactor_local_px2), iterations=p.iterations,
        tolerance_px=p.tolerance_px, patches_cols=p.patches_xy[0], patches_rows=p.patches_xy[1],
        group=p.group_global, bin=p.output_bin, throw_frames=p.throw_frames, trunc_frames=p.truncate_frames,
        fmintfile_path=_fmintfile(inputs, config, folder), dose_per_frame_e_per_a2=dose,
        pixel_size_angstrom=inputs.pixel_size_angstrom, voltage_kv=inputs.voltage_kv, dark_path=dark,
        gain_path=inputs.gain_path, defect_map_path=_defect_map(inputs, folder),
        flip_gain=int(inputs.frame_flip) if config.apply_gain_geometry else 0,
        rot_gain=inputs.frame_rotate if config.apply_gain_geometry else 0)


def motioncorrection_external_run(inputs: ExposureInputs, config, *, attempt_key: str):
    """Run MotionCor on one exposure; returns ``(MotionCorrectionOutcome, aligned sum array)``."""
    from semc.base.engines import engine_resolve
    from semc.base.external import run
    from semc.base.io import read_image
    from semc.motioncorrection.calc.external import motioncor2_command, motioncor_log_parse
    from semc.motioncorrection.task import MotionCorrectionOutcome, _dark_per_frame, _movie_check

    started = time.time()
    _movie_check(inputs, config.settle_s)
    engine = engine_resolve(_STEP, config.engine)
    rundir = Path(config.rundir)
    attempt = rundir / ".attempts" / attempt_key
    shutil.rmtree(attempt, ignore_errors=True)
    attempt.mkdir(parents=True)
    try:
        params = _command_params(inputs, config, attempt, _dark_per_frame(inputs, attempt))
        argv = motioncor2_command(params, executable=engine.executable)
        log_path = rundir / f"{inputs.filename}_st_Log.{config.engine}.txt"
        done = run(argv, cwd=attempt, timeout_s=config.external_timeout_s, log_path=log_path,
                   exposure_id=inputs.exposure_id, step=_STEP, program=config.engine, version=engine.version)
        log = motioncor_log_parse(done.stdout, version=engine.detected, path=str(log_path),
                                  exposure_id=inputs.exposure_id)
        if not (attempt / f"{inputs.filename}_c.mrc").is_file():
            raise LogParseError(f"{config.engine} exited normally but wrote no {inputs.filename}_c.mrc",
                                step=_STEP, exposure_id=inputs.exposure_id, path=str(log_path),
                                program=config.engine, version=engine.version)
        final = {}
        for kind, name in (("sum", f"{inputs.filename}_c.mrc"), ("dose_weighted", f"{inputs.filename}_c_DW.mrc")):
            if (attempt / name).exists():
                os.replace(attempt / name, rundir / name)
                final[kind] = str(rundir / name)
    finally:
        shutil.rmtree(attempt, ignore_errors=True)
    total, _ = read_image(final["sum"])
    shifts = log.shifts_px
    outcome = MotionCorrectionOutcome(
        exposure_id=inputs.exposure_id, sum_path=final["sum"], dose_weighted_path=final.get("dose_weighted"),
        shifts_px=shifts, reference_frame=len(shifts) // 2, first_frame=config.params.throw_frames,
        n_frames=inputs.n_frames, n_processed=len(shifts), output_bin=config.params.output_bin,
        output_pixel_size_angstrom=inputs.pixel_size_angstrom * config.params.output_bin,
        output_shape=tuple(total.shape), timings_s={"external": time.time() - started,
                                                    "program_total": log.total_time_s or 0.0},
        worker_host=socket.gethostname(), started_at_epoch_s=started, finished_at_epoch_s=time.time(),
        local=config.params.local, dose_per_frame_e_per_a2=inputs.dose_per_frame_e_per_a2,
        voltage_kv=inputs.voltage_kv, cs_mm=inputs.cs_mm, input_pixel_size_angstrom=inputs.pixel_size_angstrom)
    return outcome, total
