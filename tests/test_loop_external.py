"""External engines through the daemon, end to end on a real LocalCluster and the test database: the same
exposures with CTF engine ``builtin`` and with ``ctffind4`` pointed at SEMC's own ``semc-ctffind`` (a real
process speaking CTFFIND's prompt protocol) give the same ApCtfData rows; Gctf through its stand-in
likewise; the engines and their detected versions are saved with the run; a broken program quarantines
its exposures with a typed error naming program and version, its raw output kept."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import mrcfile
import pytest

from semc import models as m
from semc.base.engines import version_cache_clear
from semc.base.errors import ConfigurationError
from semc.ctfestimation.ctffind_files import CTFFIND_VERSION
from semc.ctfestimation.task import ctf_task_config
from semc.loop import Controller, LoopParams
from semc.models.semc import ExposureStep, ProcessingRun, StepState
from semc.pipeline import PipelineConfig
from tests.ctfestimation.test_external_contract import TRUTH, synthetic_micrograph
from tests.factories import session_populate
from tests.test_loop import _params as _motion_params
from tests.test_loop import (
    _run,
    session,  # noqa: F401 - the fixture of small movies moving by a known step
)

#: the CTFFIND version semc-ctffind reports (detected as the engine's version)
SEMC_CTFFIND_VERSION = CTFFIND_VERSION.split()[0]
FAKE_GCTF = Path(__file__).resolve().parent / "data" / "gctf" / "fake_gctf.py"
N_IMAGES = 2
ROW_FIELDS = ("defocus1", "defocus2", "angle_astigmatism", "defocusinit", "amplitude_contrast", "cs",
              "extra_phase_shift", "cross_correlation", "confidence", "confidence_d", "ctffind4_resolution")

needs_ctffind = pytest.mark.skipif(shutil.which("semc-ctffind") is None,
                                   reason="semc-ctffind is not installed (pip install -e .)")


def daemon(test):
    """A daemon test: real LocalCluster, committed transactions, slow, and semc-ctffind installed."""
    for mark in (pytest.mark.django_db(databases="__all__", transaction=True), pytest.mark.slow, needs_ctffind):
        test = mark(test)
    return pytest.mark.usefixtures("micrograph_session")(test)


@pytest.fixture(autouse=True)
def _engines_unset(monkeypatch):
    for name in ("CTFFIND4", "CTFFIND5", "GCTF", "MOTIONCOR2"):
        monkeypatch.delenv(f"SEMC_{name}_EXE", raising=False)
    version_cache_clear()
    yield
    version_cache_clear()


@pytest.fixture
def micrograph_session(tmp_path):
    images = tmp_path / "leginon"
    images.mkdir()
    populated = session_populate(n_images=N_IMAGES, frame_path=str(tmp_path / "frames"), image_path=str(images))
    m.CameraEMData.objects.update(binning_x=1, binning_y=1)
    m.PixelSizeCalibrationData.objects.update(pixelsize=1.0e-10)
    for index, image in enumerate(populated.images):
        with mrcfile.new(images / f"{image.filename}.mrc") as mrc:
            mrc.set_data(synthetic_micrograph(n=512, seed=5 + index))
            mrc.voxel_size = 1.0
    return populated


def _params(tmp_path, runname: str, engine: str, **changes) -> LoopParams:
    rundir = str(tmp_path / runname)
    ctf = ctf_task_config(rundir=rundir, box=256, resmin=30.0, resmax=5.0, defocus_range=(5000.0, 30000.0),
                          engine=engine, external_timeout_s=changes.pop("timeout", 120.0))
    if changes:
        ctf = dataclasses.replace(ctf, params=dataclasses.replace(ctf.params, **changes))
    steps = ("ctfestimation",)
    return LoopParams(session="26nov23a", preset="enn", steps=steps, rundir=rundir, runname=runname,
                      pipeline=PipelineConfig(steps=steps, ctfestimation=ctf), engines={"ctfestimation": engine},
                      wait=False, poll_interval_s=0.2, max_attempts=1, backoff_base_s=0.2, defer_retry_s=0.2,
                      grace_s=2.0)


def _rows(runname: str) -> dict[int, m.ApCtfData]:
    return {row.image_id: row for row in m.ApCtfData.objects.filter(acerun__name=runname)}


def _assert_same_rows(external: dict, builtin: dict) -> None:
    assert sorted(external) == sorted(builtin) and len(external) == N_IMAGES
    for image_id, row in external.items():
        for name in ROW_FIELDS:
            assert getattr(row, name) == pytest.approx(getattr(builtin[image_id], name), rel=1e-6, abs=1e-12), name
        assert row.graph3 == builtin[image_id].graph3 and row.graph4 == builtin[image_id].graph4
        assert row.ctfvalues_file == builtin[image_id].ctfvalues_file


@daemon
def test_ctffind4_engine_on_semc_ctffind_stores_the_rows_the_builtin_stores(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMC_CTFFIND4_EXE", "semc-ctffind")
    _run(_params(tmp_path, "builtin1", "builtin"))
    _run(_params(tmp_path, "ctffind1", "ctffind4"))
    external, builtin = _rows("ctffind1"), _rows("builtin1")
    _assert_same_rows(external, builtin)
    truth_mean = 0.5 * (TRUTH["defocus_1_angstrom"] + TRUTH["defocus_2_angstrom"]) * 1e-10
    assert all(0.5 * (r.defocus1 + r.defocus2) == pytest.approx(truth_mean, rel=0.03) for r in external.values())
    run = ProcessingRun.objects.get(name="ctffind1")
    assert run.engines == {"ctfestimation": "ctffind4"}
    assert run.engine_versions["ctfestimation"].endswith(f"({SEMC_CTFFIND_VERSION})")
    assert "semc-ctffind" in run.engine_versions["ctfestimation"]
    assert ProcessingRun.objects.get(name="builtin1").engine_versions == {"ctfestimation": "builtin (semc)"}
    rundir = tmp_path / "ctffind1"
    for row in external.values():
        short = Path(row.ctfvalues_file).name.removesuffix("-pow.txt")
        assert "Pixel size" in (rundir / f"{short}.ctffind4.log").read_text()
        assert (rundir / "opimages" / row.graph3).is_file() and (rundir / row.ctfvalues_file).is_file()
    assert {line.state for line in ExposureStep.objects.filter(run=run)} == {StepState.DONE}
    assert not list(rundir.glob(".attempts/*")) and not (rundir / ".failed").exists()


@daemon
def test_gctf_engine_stores_the_rows_the_builtin_stores_and_its_version(tmp_path, monkeypatch):
    gctf = tmp_path / "Gctf"
    gctf.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_GCTF} "$@"\n')
    gctf.chmod(0o755)
    monkeypatch.setenv("SEMC_GCTF_EXE", str(gctf))
    restrained = {"astigmatism_restraint_angstrom": 1000.0}  # what Gctf always does
    _run(_params(tmp_path, "builtin2", "builtin", **restrained))
    _run(_params(tmp_path, "gctf2", "gctf", **restrained))
    external, builtin = _rows("gctf2"), _rows("builtin2")
    assert sorted(external) == sorted(builtin)
    for image_id, row in external.items():  # Gctf's log prints 2 decimals: rows agree to its precision
        other = builtin[image_id]
        assert (row.defocus1, row.defocus2) == pytest.approx((other.defocus1, other.defocus2), abs=0.01e-10)
        assert row.angle_astigmatism == pytest.approx(other.angle_astigmatism, abs=0.01)
        assert row.ctffind4_resolution == pytest.approx(other.ctffind4_resolution, abs=1e-3)
        assert row.cross_correlation == pytest.approx(other.cross_correlation, abs=1e-6)
        assert row.ctfvalues_file.endswith("_gctf.log") and row.graph3 == other.graph3
    assert ProcessingRun.objects.get(name="gctf2").engine_versions["ctfestimation"] == f"{gctf} (1.06)"


@daemon
def test_a_crashing_ctffind_quarantines_its_exposures_with_a_typed_error_and_the_log_kept(tmp_path, monkeypatch):
    program = tmp_path / "ctffind"
    probes = tmp_path / "version-probes"
    program.write_text(f"#!/bin/sh\nif [ \"$1\" = --version ]; then echo x >> {probes}; "
                       "echo 'CTFFIND version 4.1.14'; exit 0; fi\n"
                       "printf 'Input image file name [input.mrc]   : '\nread answer\n"
                       "echo \"Error: cannot read $answer\"\nkill -SEGV $$\n")
    program.chmod(0o755)
    monkeypatch.setenv("SEMC_CTFFIND4_EXE", str(program))
    _run(_params(tmp_path, "broken", "ctffind4"))
    lines = list(ExposureStep.objects.all())
    assert len(lines) == N_IMAGES and {line.state for line in lines} == {StepState.QUARANTINED}
    assert {line.error_kind for line in lines} == {"ExternalProgramFailed"}
    assert all("program=ctffind4" in line.last_error and "version=4.1.14" in line.last_error
               and f"exposure={line.exposure_id}" in line.last_error and "signal=11" in line.last_error
               for line in lines)
    logs = list((tmp_path / "broken").glob("*.ctffind4.log"))
    assert len(logs) == N_IMAGES and all("Error: cannot read" in log.read_text() for log in logs)
    assert len(list((tmp_path / "broken" / ".failed").iterdir())) == N_IMAGES
    assert not m.ApCtfData.objects.exists()
    # detected at start-up and once per worker process, never per exposure
    assert 1 <= len(probes.read_text().split()) <= 2 < N_IMAGES + 1


@pytest.mark.usefixtures("micrograph_session")
@pytest.mark.django_db(databases="__all__")
def test_a_missing_program_stops_the_run_at_start_up_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMC_CTFFIND4_EXE", str(tmp_path / "ctffind-not-installed"))
    controller = Controller(_params(tmp_path, "missing", "ctffind4"), cluster=None)
    with pytest.raises(ConfigurationError) as info:
        controller.prepare()
    assert info.value.key == "SEMC_CTFFIND4_EXE" and "ctffind-not-installed" in str(info.value)
    assert not ProcessingRun.objects.filter(name="missing").exists()


def _loop_args(*argv: str):
    import argparse

    from semc.commands.loop import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--session", "26nov23a", "--rundir", "/data/appion/ctf1", *argv])


def test_loop_flags_choose_each_step_engine_and_the_timeout(monkeypatch):
    from semc.commands.loop import loop_params_from_args

    monkeypatch.setenv("SEMC_CONFIG", "none")
    params = loop_params_from_args(_loop_args("--mc-engine", "motioncor2", "--ctf-engine", "gctf",
                                              "--external-timeout", "90"))
    assert params.engines == {"motioncorrection": "motioncor2", "ctfestimation": "gctf"}
    assert params.pipeline.motioncorrection.engine == "motioncor2" and params.pipeline.ctfestimation.engine == "gctf"
    assert params.pipeline.motioncorrection.external_timeout_s == params.pipeline.ctfestimation.external_timeout_s == 90
    assert _loop_args("--engine", "motioncor3").engine == "motioncor3"  # the historical name of the flag
    only_ctf = loop_params_from_args(_loop_args("--steps", "ctfestimation", "--ctf-engine", "ctffind5"))
    assert only_ctf.engines == {"ctfestimation": "ctffind5"}  # no engine resolved for a step that does not run


def test_the_timeout_comes_from_the_configuration_and_unknown_engines_are_refused(monkeypatch, capsys):
    from semc.commands.loop import loop_params_from_args

    monkeypatch.setenv("SEMC_CONFIG", "none")
    monkeypatch.setenv("SEMC_EXTERNAL_TIMEOUT_S", "1200")
    params = loop_params_from_args(_loop_args("--ctf-engine", "ctffind4"))
    assert params.pipeline.ctfestimation.external_timeout_s == 1200.0
    with pytest.raises(SystemExit):
        _loop_args("--ctf-engine", "ctffind3")
    assert "invalid choice: 'ctffind3'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="must be > 0"):
        loop_params_from_args(_loop_args("--external-timeout", "0"))


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.slow
@needs_ctffind
@pytest.mark.usefixtures("session")  # tests/test_loop.py's movies, moving by a known step
def test_chained_after_motion_correction_ctffind4_fits_the_aligned_sum_the_builtin_would(tmp_path, monkeypatch):
    from semc.ctfestimation.api import estimate_ctf
    from semc.ctfestimation.calc.external import CtffindResult, apctfdata_values_from_ctffind

    monkeypatch.setenv("SEMC_CTFFIND4_EXE", "semc-ctffind")
    base = _motion_params(tmp_path)
    ctf = ctf_task_config(rundir=base.rundir, box=128, resmin=30.0, resmax=6.0, defocus_range=(5000.0, 40000.0),
                          engine="ctffind4")
    steps = ("motioncorrection", "ctfestimation")
    _run(_motion_params(tmp_path, steps=steps, limit=N_IMAGES,
                        engines={"motioncorrection": "builtin", "ctfestimation": "ctffind4"},
                        pipeline=PipelineConfig(steps=steps, motioncorrection=base.pipeline.motioncorrection,
                                                ctfestimation=ctf)))
    rows = list(m.ApCtfData.objects.all())
    assert len(rows) == N_IMAGES == m.ApDDAlignImagePairData.objects.count() // 2  # pairs: -a and -a-DW
    image_path = Path(m.SessionData.objects.get(name="26nov23a").image_path)
    for row in rows:
        aligned = m.AcquisitionImageData.objects.get(pk=row.image_id)
        assert aligned.filename.endswith("-a")
        params = dataclasses.replace(ctf.params, pixel_size_angstrom=1.0, voltage_kv=300.0,
                                     spherical_aberration_mm=2.7)
        fit = estimate_ctf(image_path / aligned.image, params=params)  # the built-in on the stored aligned sum
        expected = apctfdata_values_from_ctffind(
            CtffindResult(1, fit.defocus_1_angstrom, fit.defocus_2_angstrom, fit.astigmatism_azimuth_degree,
                          fit.phase_shift_radian, fit.cross_correlation, fit.fit_resolution_angstrom),
            amplitude_contrast=0.07, cs_mm=2.7, start_defocus_angstrom=row.defocusinit * 1e10)
        for name, value in expected.as_columns().items():
            assert getattr(row, name) == pytest.approx(value, rel=1e-5, abs=1e-12), name
    run = ProcessingRun.objects.get()
    assert set(run.engine_versions) == {"motioncorrection", "ctfestimation"}
    assert "semc-ctffind" in run.engine_versions["ctfestimation"]
    for step in steps:  # --limit: the first N_IMAGES exposures, the rest left pending
        assert ExposureStep.objects.filter(step=step, state=StepState.DONE).count() == N_IMAGES
