"""The Dask unit of CTF estimation: an aligned sum (in memory, or read from the image path) in,
CTFFIND-format files and pictures written atomically into the run directory, a result out."""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from semc.base.errors import InputNotReady
from semc.base.exposure import ExposureInputs
from semc.ctfestimation.calc.appion import short_image_name
from semc.ctfestimation.types import CtfSearchParameters

__all__ = ["EXTERNAL_ENGINES", "CtfOutcome", "CtfTaskConfig", "ctf_task_config", "ctfestimation_run",
           "files_place", "pictures_write", "short_name_of"]

_STEP = "ctfestimation"
#: engines run as external programs (semc.ctfestimation.task_external)
EXTERNAL_ENGINES = ("ctffind4", "ctffind5", "gctf")


@dataclass(frozen=True, slots=True)
class CtfTaskConfig:
    """Run-wide CTF search settings; pixel size, kV and Cs come from each exposure."""

    params: CtfSearchParameters
    rundir: str
    align_label: str = "a"
    engine: str = "builtin"  # builtin | ctffind4 | ctffind5 | gctf (an external program through the runner)
    external_timeout_s: float = 600.0


@dataclass(frozen=True, slots=True)
class CtfOutcome:
    """One fitted micrograph in CTFFIND's conventions (Å, degrees, radians) and the files written."""

    exposure_id: int
    defocus_1_angstrom: float
    defocus_2_angstrom: float
    azimuth_degree: float
    phase_shift_radian: float
    cross_correlation: float
    fit_resolution_angstrom: float
    amplitude_contrast: float
    cs_mm: float
    voltage_kv: float
    start_defocus_angstrom: float
    short_name: str
    files: dict[str, str] = field(default_factory=dict)  # kind -> path
    timings_s: dict[str, float] = field(default_factory=dict)
    worker_host: str = ""
    started_at_epoch_s: float = 0.0
    finished_at_epoch_s: float = 0.0


def ctf_task_config(*, rundir: str, box: int = 512, resmin: float = 30.0, resmax: float = 5.0,
                    defocus_range: tuple[float, float] = (5000.0, 50000.0), amplitude_contrast: float = 0.07,
                    align_label: str = "a", engine: str = "builtin",
                    external_timeout_s: float = 600.0) -> CtfTaskConfig:
    """A run's CTF configuration; the placeholder pixel size is replaced per exposure."""
    params = CtfSearchParameters(pixel_size_angstrom=1.0, amplitude_contrast=amplitude_contrast, box_size=box,
                                 min_resolution_angstrom=resmin, max_resolution_angstrom=resmax,
                                 min_defocus_angstrom=defocus_range[0], max_defocus_angstrom=defocus_range[1])
    return CtfTaskConfig(params=params, rundir=rundir, align_label=align_label, engine=engine,
                         external_timeout_s=external_timeout_s)


def _micrograph(inputs: ExposureInputs, image, motioncorrection):
    """The aligned sum and its pixel size: from the chained motion correction, or the exposure's own MRC."""
    if image is not None:
        return np.asarray(image, dtype=np.float32), motioncorrection.output_pixel_size_angstrom
    from semc.base.io import read_image

    path = os.path.join(inputs.image_path, f"{inputs.filename}.mrc")
    if not os.path.exists(path):
        raise InputNotReady("micrograph not (yet) in the image path", step=_STEP, exposure_id=inputs.exposure_id,
                            path=path)
    data, _ = read_image(path)
    return data, inputs.pixel_size_angstrom


def pictures_write(image: np.ndarray, frequency_per_angstrom: np.ndarray, curves: dict[str, np.ndarray],
                   folder: Path, short: str) -> dict[str, str]:
    """Classic graph3 (``<short>-pow.jpg``, the diagnostic image) and graph4 (``<short>-pow_avrot.png``,
    the 1-D profiles over spatial frequency) in ``folder``; returns kind -> path."""
    from semc.base.imaging import ctf_profile_png, image_png

    files = {"graph3": str(folder / f"{short}-pow.jpg"), "graph4": str(folder / f"{short}-pow_avrot.png")}
    image_png(image, files["graph3"])
    ctf_profile_png(frequency_per_angstrom, curves, files["graph4"])
    return files


def _pictures(result, folder: Path, short: str) -> dict[str, str]:
    d = result.diagnostics
    return pictures_write(d.diagnostic_image, d.spatial_frequency_per_angstrom,
                          {"spectrum": d.rotational_average, "CTF fit": d.ctf_fit, "fit quality": d.fit_correlation},
                          folder, short)


#: kinds of output that go to ``<rundir>/opimages`` (the rest stay in the run directory)
OPIMAGES_KINDS = ("diagnostic", "graph3", "graph4")


def files_place(produced: dict[str, Path], rundir: Path) -> dict[str, str]:
    """Move finished outputs from the attempt folder into place (``os.replace``); returns kind -> final path."""
    (rundir / "opimages").mkdir(exist_ok=True)
    files = {}
    for kind, path in produced.items():
        target = rundir / ("opimages" if kind in OPIMAGES_KINDS else "") / path.name
        os.replace(path, target)
        files[kind] = str(target)
    return files


def short_name_of(inputs: ExposureInputs, config: CtfTaskConfig, motioncorrection) -> str:
    """Appion's short name of the micrograph: the aligned ``-<label>`` image when chained, else the exposure."""
    return short_image_name(inputs.filename + (f"-{config.align_label}" if motioncorrection is not None else ""))


def ctfestimation_run(inputs: ExposureInputs, config: CtfTaskConfig, *, image=None, motioncorrection=None,
                      attempt_key: str) -> CtfOutcome:
    """Fit the CTF of one micrograph; files land in ``<rundir>`` and ``<rundir>/opimages``."""
    if config.engine in EXTERNAL_ENGINES:
        from semc.ctfestimation.task_external import ctfestimation_external_run

        return ctfestimation_external_run(inputs, config, image=image, motioncorrection=motioncorrection,
                                          attempt_key=attempt_key)
    from semc.ctfestimation.api import estimate_ctf

    started = time.time()
    data, pixel = _micrograph(inputs, image, motioncorrection)
    params = replace(config.params, pixel_size_angstrom=pixel, voltage_kv=inputs.voltage_kv,
                     spherical_aberration_mm=inputs.cs_mm)
    short = short_name_of(inputs, config, motioncorrection)
    rundir = Path(config.rundir)
    attempt = rundir / ".attempts" / f"ctf-{attempt_key}"
    shutil.rmtree(attempt, ignore_errors=True)
    attempt.mkdir(parents=True)
    try:
        result = estimate_ctf(data, params=params, diagnostic_path=attempt / f"{short}-pow.mrc")
        produced = {"diagnostic": attempt / f"{short}-pow.mrc", "results": attempt / f"{short}-pow.txt",
                    "avrot": attempt / f"{short}-pow_avrot.txt", **{k: Path(v) for k, v in
                                                                   _pictures(result, attempt, short).items()}}
        files = files_place(produced, rundir)
    finally:
        shutil.rmtree(attempt, ignore_errors=True)
    return CtfOutcome(
        exposure_id=inputs.exposure_id, defocus_1_angstrom=result.defocus_1_angstrom,
        defocus_2_angstrom=result.defocus_2_angstrom, azimuth_degree=result.astigmatism_azimuth_degree,
        phase_shift_radian=result.phase_shift_radian, cross_correlation=result.cross_correlation,
        fit_resolution_angstrom=result.fit_resolution_angstrom, amplitude_contrast=params.amplitude_contrast,
        cs_mm=inputs.cs_mm, voltage_kv=inputs.voltage_kv,
        start_defocus_angstrom=inputs.nominal_defocus_angstrom or 0.0, short_name=short, files=files,
        timings_s=dict(result.timings_s), worker_host=socket.gethostname(), started_at_epoch_s=started,
        finished_at_epoch_s=time.time())
