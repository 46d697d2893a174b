"""CTF estimation by an external CTFFIND4 / CTFFIND5 or Gctf (engine ``ctffind4``/``ctffind5``/``gctf``).

The production path of compat §4.3 and §5.6, mirroring the motion-correction one: the engine
registry resolves the executable and detects the version once per worker; the micrograph is
linked into a private attempt folder as ``<short>.mrc`` (the aligned sum on disk, or written
there when it only exists in memory); the one runner runs the program (CTFFIND: its prompts
answered from the version's prompt table; Gctf: an argument list) with a timeout, keeping the
raw output as ``<rundir>/<short>.<engine>.log``; the version-pinned parsers read the outputs;
and the files are moved into place exactly as the built-in engine's, so that the controller
stores both the same way (`CtfOutcome` in CTFFIND's conventions).

On any failure after the program started, the attempt folder (the program's own outputs) is
kept as ``<rundir>/.failed/ctf-<attempt key>/`` and the error names it: nothing under a final
name, the raw output on disk for the operator.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from semc.base.errors import InputNotReady, LogParseError, ProcessingError
from semc.base.exposure import ExposureInputs

__all__ = ["GCTF_STAR", "ctfestimation_external_run"]

_STEP = "ctfestimation"
#: the star file Gctf writes in its working directory
GCTF_STAR = "micrographs_all_gctf.star"
#: Gctf's log and star print the same final values to different precisions (Å, degrees)
_GCTF_AGREE_ANGSTROM, _GCTF_AGREE_DEG = 1.0, 0.1


def _micrograph_link(inputs: ExposureInputs, image, motioncorrection, target: Path) -> float:
    """Put the micrograph at ``target`` (a link, or the in-memory sum written); returns its pixel size (Å)."""
    from semc.base.io import write_mrc

    if motioncorrection is not None:
        pixel = motioncorrection.output_pixel_size_angstrom
        if os.path.exists(motioncorrection.sum_path):
            os.symlink(os.path.abspath(motioncorrection.sum_path), target)
        elif image is not None:
            write_mrc(target, np.asarray(image, dtype=np.float32), pixel_size_angstrom=pixel)
        else:
            raise InputNotReady("aligned sum neither on disk nor in memory", step=_STEP,
                                exposure_id=inputs.exposure_id, path=motioncorrection.sum_path)
        return pixel
    if image is not None:
        write_mrc(target, np.asarray(image, dtype=np.float32), pixel_size_angstrom=inputs.pixel_size_angstrom)
        return inputs.pixel_size_angstrom
    path = os.path.join(inputs.image_path, f"{inputs.filename}.mrc")
    if not os.path.exists(path):
        raise InputNotReady("micrograph not (yet) in the image path", step=_STEP, exposure_id=inputs.exposure_id,
                            path=path)
    os.symlink(os.path.abspath(path), target)
    return inputs.pixel_size_angstrom


def _output_missing(path: Path, kept: Path, engine, exposure_id: int) -> None:
    if not path.is_file():
        raise LogParseError(f"{engine.name} exited normally but wrote no {path.name}", step=_STEP,
                            exposure_id=exposure_id, path=str(kept / path.name), program=engine.name,
                            version=engine.version)


def _output_text(path: Path, kept: Path, engine, exposure_id: int) -> str:
    """An output file the program must have written (errors name where it is kept on failure)."""
    _output_missing(path, kept, engine, exposure_id)
    return path.read_text(encoding="utf-8", errors="replace")


def _output_image(path: Path, kept: Path, engine, exposure_id: int) -> np.ndarray:
    """The program's diagnostic MRC as an array (errors name where it is kept on failure)."""
    from semc.base.io import read_image

    _output_missing(path, kept, engine, exposure_id)
    try:
        return read_image(path)[0]
    except ProcessingError as exc:
        raise LogParseError(f"{engine.name}'s diagnostic image does not read: {exc.message}", step=_STEP,
                            exposure_id=exposure_id, path=str(kept / path.name), program=engine.name,
                            version=engine.version) from exc


def _ctffind(engine, params, ctx: dict) -> tuple[dict, dict[str, Path]]:
    """Run CTFFIND on ``<short>.mrc`` in the attempt folder; returns (values, produced files)."""
    from semc.base.external import run_interactive
    from semc.ctfestimation.calc.external import (
        ctffind_avrot_parse,
        ctffind_params_from_search,
        ctffind_prompt_table,
        ctffind_results_parse,
    )
    from semc.ctfestimation.task import pictures_write

    attempt, kept, short, eid = ctx["attempt"], ctx["kept"], ctx["short"], ctx["exposure_id"]
    answers = ctffind_params_from_search(params, input_path=f"{short}.mrc", diagnostic_path=f"{short}-pow.mrc")
    run_interactive([engine.executable], answers=ctffind_prompt_table(answers, version=engine.detected),
                    cwd=attempt, timeout_s=ctx["timeout_s"], log_path=ctx["log_path"], exposure_id=eid, step=_STEP,
                    program=engine.name, version=engine.version, prompt_timeout_s=min(60.0, ctx["timeout_s"]))
    produced = {"diagnostic": attempt / f"{short}-pow.mrc", "results": attempt / f"{short}-pow.txt",
                "avrot": attempt / f"{short}-pow_avrot.txt"}
    row = ctffind_results_parse(_output_text(produced["results"], kept, engine, eid), version=engine.detected,
                                path=str(kept / produced["results"].name), exposure_id=eid)[0]
    curves = ctffind_avrot_parse(_output_text(produced["avrot"], kept, engine, eid), program=engine.name,
                                 path=str(kept / produced["avrot"].name), exposure_id=eid)[0]
    diagnostic = _output_image(produced["diagnostic"], kept, engine, eid)
    produced.update({k: Path(v) for k, v in pictures_write(
        diagnostic, curves.spatial_frequency_per_angstrom,
        {"spectrum": curves.rotational_average, "CTF fit": curves.ctf_fit, "fit quality": curves.cross_correlation},
        attempt, short).items()})
    values = {"defocus_1_angstrom": row.defocus1_angstrom, "defocus_2_angstrom": row.defocus2_angstrom,
              "azimuth_degree": row.azimuth_deg, "phase_shift_radian": row.phase_shift_rad,
              "cross_correlation": row.cross_correlation, "fit_resolution_angstrom": row.fit_resolution_angstrom}
    return values, produced


def _gctf_agree(log, star, *, path: str, engine, exposure_id: int) -> None:
    pairs = [("Defocus_U", log.defocus_u_angstrom, star.defocus_u_angstrom, _GCTF_AGREE_ANGSTROM),
             ("Defocus_V", log.defocus_v_angstrom, star.defocus_v_angstrom, _GCTF_AGREE_ANGSTROM),
             ("Angle", log.angle_deg, star.angle_deg, _GCTF_AGREE_DEG)]
    for label, a, b, tolerance in pairs:
        if abs(a - b) > tolerance:
            raise LogParseError(f"Gctf's log and star file disagree on {label}: {a} vs {b}", step=_STEP,
                                exposure_id=exposure_id, path=path, program=engine.name, version=engine.version)


def _gctf(engine, params, ctx: dict) -> tuple[dict, dict[str, Path]]:
    """Run Gctf on ``<short>.mrc`` in the attempt folder; returns (values, produced files).

    Values come from ``<short>_gctf.log`` as classic ``gctf.py`` reads them, checked against
    the star file; graph4 plots the EPA profiles.
    """
    from semc.base.external import run
    from semc.ctfestimation.calc.external_gctf import (
        gctf_command,
        gctf_epa_parse,
        gctf_log_parse,
        gctf_params_from_search,
        gctf_star_values,
    )
    from semc.ctfestimation.task import pictures_write

    attempt, kept, short, eid = ctx["attempt"], ctx["kept"], ctx["short"], ctx["exposure_id"]
    argv = gctf_command(gctf_params_from_search(params, input_path=f"{short}.mrc"), executable=engine.executable)
    run(argv, cwd=attempt, timeout_s=ctx["timeout_s"], log_path=ctx["log_path"], exposure_id=eid, step=_STEP,
        program=engine.name, version=engine.version)
    log_file, star_file, epa_file = (attempt / f"{short}_gctf.log", attempt / GCTF_STAR, attempt / f"{short}_EPA.log")
    log = gctf_log_parse(_output_text(log_file, kept, engine, eid), path=str(kept / log_file.name),
                         version=engine.version, exposure_id=eid)
    star = gctf_star_values(_output_text(star_file, kept, engine, eid), micrograph=f"{short}.mrc",
                            path=str(kept / star_file.name), version=engine.version, exposure_id=eid)
    _gctf_agree(log, star, path=str(kept / star_file.name), engine=engine, exposure_id=eid)
    epa = gctf_epa_parse(_output_text(epa_file, kept, engine, eid), path=str(kept / epa_file.name),
                         version=engine.version, exposure_id=eid)
    diagnostic_file = attempt / f"{short}.ctf"
    diagnostic = _output_image(diagnostic_file, kept, engine, eid)
    produced = {"diagnostic": attempt / f"{short}-pow.mrc", "results": log_file, "epa": epa_file,
                "star": attempt / f"{short}_gctf.star"}
    os.replace(diagnostic_file, produced["diagnostic"])
    os.replace(star_file, produced["star"])
    produced.update({k: Path(v) for k, v in pictures_write(
        diagnostic, epa["spatial_frequency_per_angstrom"],
        {"EPA - background": epa["epa_background_subtracted"], "CTF fit": epa["ctf_fit"],
         "fit quality": epa["cross_correlation"]}, attempt, short).items()})
    resolution = log.resolution_angstrom
    values = {"defocus_1_angstrom": log.defocus_u_angstrom, "defocus_2_angstrom": log.defocus_v_angstrom,
              "azimuth_degree": log.angle_deg, "phase_shift_radian": math.radians(log.phase_shift_deg),
              "cross_correlation": log.cross_correlation,
              "fit_resolution_angstrom": math.inf if resolution is None else resolution}
    return values, produced


def ctfestimation_external_run(inputs: ExposureInputs, config, *, image=None, motioncorrection=None,
                               attempt_key: str):
    """Fit the CTF of one micrograph with the configured external program; returns a `CtfOutcome`.

    Files land where the built-in engine puts them (``<rundir>``, ``<rundir>/opimages``); the
    program's raw output stays in ``<rundir>/<short>.<engine>.log``.

    Raises
    ------
    InputNotReady
        The micrograph is not there yet.
    ConfigurationError, UnsupportedVersion
        From resolving the engine (once per worker).
    InputMissing, ExternalProgramFailed, ExternalProgramTimeout
        From the runner (missing executable, crash, hang).
    LogParseError
        Outputs missing or unparseable (wrong column count, a star file without values, ...).
    """
    from semc.base.engines import engine_resolve
    from semc.ctfestimation.task import CtfOutcome, files_place, short_name_of

    started = time.time()
    engine = engine_resolve(_STEP, config.engine)
    short = short_name_of(inputs, config, motioncorrection)
    rundir = Path(config.rundir)
    attempt = rundir / ".attempts" / f"ctf-{attempt_key}"
    kept = rundir / ".failed" / f"ctf-{attempt_key}"
    shutil.rmtree(attempt, ignore_errors=True)
    attempt.mkdir(parents=True)
    ctx = {"attempt": attempt, "kept": kept, "short": short, "exposure_id": inputs.exposure_id,
           "timeout_s": config.external_timeout_s, "log_path": rundir / f"{short}.{config.engine}.log"}
    try:
        pixel = _micrograph_link(inputs, image, motioncorrection, attempt / f"{short}.mrc")
        params = replace(config.params, pixel_size_angstrom=pixel, voltage_kv=inputs.voltage_kv,
                         spherical_aberration_mm=inputs.cs_mm)
        values, produced = (_gctf if config.engine == "gctf" else _ctffind)(engine, params, ctx)
        files = files_place(produced, rundir)
    except ProcessingError as exc:
        if not isinstance(exc, InputNotReady):  # a deferral is no failure: nothing to keep
            shutil.rmtree(kept, ignore_errors=True)
            kept.parent.mkdir(exist_ok=True)
            os.replace(attempt, kept)
        raise
    finally:
        shutil.rmtree(attempt, ignore_errors=True)
    return CtfOutcome(
        exposure_id=inputs.exposure_id, amplitude_contrast=params.amplitude_contrast, cs_mm=inputs.cs_mm,
        voltage_kv=inputs.voltage_kv, start_defocus_angstrom=inputs.nominal_defocus_angstrom or 0.0,
        short_name=short, files=files, timings_s={"external": time.time() - started},
        worker_host=socket.gethostname(), started_at_epoch_s=started, finished_at_epoch_s=time.time(), **values)
