"""The Dask unit of motion correction: plain inputs in, files written atomically, a result out.

No ORM here (style convention 6). Outputs are written into a private attempt folder
``<rundir>/.attempts/<key>/`` and moved into place with ``os.replace`` only when the
whole correction succeeded, so a crashed or cancelled attempt leaves no partial file
under a final name.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from semc.base.errors import CorruptInput, InputMissing, InputNotReady
from semc.base.exposure import ExposureInputs
from semc.motioncorrection.types import MotionCorrectionParams

__all__ = ["MotionCorrectionTaskConfig", "MotionCorrectionOutcome", "motioncorrection_run", "defect_lines"]

_STEP = "motioncorrection"


@dataclass(frozen=True, slots=True)
class MotionCorrectionTaskConfig:
    """Run-wide motion-correction settings; per-exposure values (pixel size, kV, dose) come from the inputs."""

    params: MotionCorrectionParams
    rundir: str
    dose_weighting: bool = True
    eer_frames_per_fraction: int = 30
    apply_gain_geometry: bool = True
    settle_s: float = 120.0  # an incomplete movie unchanged this long is broken, not still arriving
    engine: str = "builtin"  # builtin | motioncor2 | motioncor3 (an external program through the runner)
    external_timeout_s: float = 600.0


@dataclass(frozen=True, slots=True)
class MotionCorrectionOutcome:
    """What the controller stores: where the sums are, the shifts, the timings."""

    exposure_id: int
    sum_path: str
    dose_weighted_path: str | None
    shifts_px: tuple[tuple[float, float], ...]  # correction per processed frame, input pixels (MotionCor sign)
    reference_frame: int
    first_frame: int
    n_frames: int
    n_processed: int
    output_bin: float
    output_pixel_size_angstrom: float
    output_shape: tuple[int, int]  # (ny, nx) of the written sums
    timings_s: dict[str, float] = field(default_factory=dict)
    peak_memory_bytes: int = 0
    worker_host: str = ""
    started_at_epoch_s: float = 0.0
    finished_at_epoch_s: float = 0.0
    local: bool = False
    dose_per_frame_e_per_a2: float | None = None  # per processed frame
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    input_pixel_size_angstrom: float = 1.0


def defect_lines(inputs: ExposureInputs) -> list[str]:
    """MotionCor ``-DefectFile`` lines (``x y w h``) for the exposure's bad rows, columns and pixels."""
    plan = inputs.defects
    if plan.empty:
        return []
    if inputs.camera_dimensions is None:
        raise InputMissing("the camera row has no dimensions, needed to place bad rows and columns",
                           step=_STEP, exposure_id=inputs.exposure_id)
    nx, ny = inputs.camera_dimensions
    lines = [f"{col} 0 1 {ny}" for col in plan.bad_cols]
    lines += [f"0 {row} {nx} 1" for row in plan.bad_rows]
    lines += [f"{x} {y} 1 1" for x, y in plan.bad_pixels]
    return lines


def _movie_check(inputs: ExposureInputs, settle_s: float) -> None:
    """Not there yet, or incomplete and still changing: defer (R5). Incomplete and unchanged for
    ``settle_s``: a truncated file that will never be finished, a real failure."""
    from semc.base.io import movie_readiness

    path = inputs.movie_path
    if not os.path.exists(path):
        raise InputNotReady("movie not (yet) in the frame path", step=_STEP, exposure_id=inputs.exposure_id,
                            path=path)
    readiness = movie_readiness(path)
    if readiness.complete:
        return
    age_s = time.time() - readiness.mtime
    if age_s > settle_s:
        raise CorruptInput(f"movie incomplete and unchanged for {age_s:.0f} s: {readiness.reason}", step=_STEP,
                           exposure_id=inputs.exposure_id, path=path)
    raise InputNotReady(f"movie incomplete: {readiness.reason}", step=_STEP, exposure_id=inputs.exposure_id,
                        path=path)


def _dark_per_frame(inputs: ExposureInputs, folder: Path) -> str | None:
    """Leginon's dark reference is a sum over the dark's frames; MotionCor subtracts a per-frame dark."""
    if not inputs.dark_path:
        return None
    from semc.base.io import read_image, write_mrc

    if not os.path.exists(inputs.dark_path):
        raise InputNotReady("dark reference not found", step=_STEP, exposure_id=inputs.exposure_id,
                            path=inputs.dark_path)
    dark, _ = read_image(inputs.dark_path)
    path = folder / "dark_per_frame.mrc"
    write_mrc(path, (dark / max(1, inputs.dark_n_frames or 1)).astype(np.float32), pixel_size_angstrom=None)
    return str(path)


def _references(inputs: ExposureInputs, config: MotionCorrectionTaskConfig, folder: Path):
    from semc.motioncorrection.api import DetectorReferences

    if inputs.gain_path and not os.path.exists(inputs.gain_path):
        raise InputNotReady("gain reference not found", step=_STEP, exposure_id=inputs.exposure_id,
                            path=inputs.gain_path)
    defect_file = None
    lines = defect_lines(inputs)
    if lines:
        defect_file = folder / "defects.txt"
        defect_file.write_text("\n".join(lines) + "\n")
    geometry = config.apply_gain_geometry
    return DetectorReferences(gain_path=inputs.gain_path, dark_path=_dark_per_frame(inputs, folder),
                              defect_file=str(defect_file) if defect_file else None,
                              rotation_quarters=inputs.frame_rotate if geometry else 0,
                              flip=int(inputs.frame_flip) if geometry else 0)


def _exposure_params(inputs: ExposureInputs, config: MotionCorrectionTaskConfig) -> MotionCorrectionParams:
    dose = inputs.dose_per_frame_e_per_a2 if config.dose_weighting and inputs.dose_per_frame_e_per_a2 else 0.0
    return replace(config.params, pixel_size_angstrom=inputs.pixel_size_angstrom, voltage_kv=inputs.voltage_kv,
                   dose_per_frame_e_per_a2=0.0 if inputs.eer else dose)


def _frame_groups(inputs: ExposureInputs, config: MotionCorrectionTaskConfig):
    if not inputs.eer:
        return None
    dose = (inputs.dose_per_frame_e_per_a2 if config.dose_weighting else None)
    return ((inputs.n_frames, config.eer_frames_per_fraction, dose),)


def motioncorrection_run(inputs: ExposureInputs, config: MotionCorrectionTaskConfig, *, attempt_key: str):
    """Correct one exposure's movie into ``<rundir>/<filename>_c.mrc`` (and ``_c_DW.mrc``).

    Returns ``(MotionCorrectionOutcome, CorrectedMovie)``; the second keeps the sums in memory so a
    chained CTF step does not read the file again.
    """
    if config.engine in ("motioncor2", "motioncor3"):
        from semc.motioncorrection.task_external import motioncorrection_external_run

        outcome, total = motioncorrection_external_run(inputs, config, attempt_key=attempt_key)
        return outcome, _Sums({"sum": total})
    from semc.motioncorrection.api import run_correction

    started = time.time()
    _movie_check(inputs, config.settle_s)
    rundir = Path(config.rundir)
    attempt_dir = rundir / ".attempts" / attempt_key
    shutil.rmtree(attempt_dir, ignore_errors=True)
    attempt_dir.mkdir(parents=True)
    try:
        result, corrected = run_correction(
            inputs.movie_path, output_path=attempt_dir / f"{inputs.filename}_c.mrc",
            params=_exposure_params(inputs, config), references=_references(inputs, config, attempt_dir),
            frame_groups=_frame_groups(inputs, config), exposure_id=inputs.exposure_id)
        final = {}
        for kind in ("sum", "dose_weighted"):
            if kind in result.output_paths:
                target = rundir / Path(result.output_paths[kind]).name
                os.replace(result.output_paths[kind], target)
                final[kind] = str(target)
    finally:
        shutil.rmtree(attempt_dir, ignore_errors=True)
    total = corrected.sums["sum"]
    outcome = MotionCorrectionOutcome(
        exposure_id=inputs.exposure_id, sum_path=final["sum"], dose_weighted_path=final.get("dose_weighted"),
        shifts_px=result.motion.shifts_px, reference_frame=result.motion.reference_frame,
        first_frame=result.motion.first_frame, n_frames=result.n_frames, n_processed=len(result.motion.shifts_px),
        output_bin=config.params.output_bin, output_pixel_size_angstrom=result.pixel_size_angstrom
        or inputs.pixel_size_angstrom * config.params.output_bin, output_shape=tuple(total.shape),
        timings_s=dict(result.timings_s), peak_memory_bytes=result.peak_memory_bytes,
        worker_host=socket.gethostname(), started_at_epoch_s=started, finished_at_epoch_s=time.time(),
        local=corrected.local_model is not None,
        dose_per_frame_e_per_a2=(inputs.total_dose_e_per_a2 / len(result.motion.shifts_px)
                                 if inputs.total_dose_e_per_a2 and inputs.eer else inputs.dose_per_frame_e_per_a2),
        voltage_kv=inputs.voltage_kv, cs_mm=inputs.cs_mm, input_pixel_size_angstrom=inputs.pixel_size_angstrom)
    return outcome, corrected


@dataclass(frozen=True, slots=True)
class _Sums:
    """The in-memory sums handed to a chained step (the engine's CorrectedMovie has the same ``sums``)."""

    sums: dict
