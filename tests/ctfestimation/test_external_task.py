"""The external CTF task (engines ``ctffind4``/``ctffind5``/``gctf``) against real processes: SEMC's own
``semc-ctffind`` speaking CTFFIND's prompt protocol, a Gctf stand-in (``tests/data/gctf/fake_gctf.py``)
speaking Gctf's command line and files, and small broken programs. The same micrograph through the
built-in task gives the same outcome; every bad input gives its own typed error naming program,
version, exposure and path, with the raw output kept on disk."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import mrcfile
import pytest

from semc.base.engines import version_cache_clear
from semc.base.errors import (
    ConfigurationError,
    ExternalProgramFailed,
    ExternalProgramTimeout,
    LogParseError,
    UnsupportedVersion,
)
from semc.base.exposure import ExposureInputs
from semc.ctfestimation.calc.appion import short_image_name
from semc.ctfestimation.calc.external import CtffindResult, apctfdata_values_from_ctffind
from semc.ctfestimation.calc.external_gctf import apctfdata_values_from_gctf, gctf_log_parse
from semc.ctfestimation.ctffind_files import CTFFIND_VERSION
from semc.ctfestimation.task import ctf_task_config, ctfestimation_run
from tests.ctfestimation.test_external_contract import TRUTH, synthetic_micrograph

#: the CTFFIND version semc-ctffind reports (detected as the engine's version)
SEMC_CTFFIND_VERSION = CTFFIND_VERSION.split()[0]
FAKE_GCTF = Path(__file__).resolve().parents[1] / "data" / "gctf" / "fake_gctf.py"
FILENAME = "26nov23a_00021en"
SHORT = short_image_name(FILENAME)  # Appion's short name, as the built-in task names its files
EXPOSURE = 4021

pytestmark = pytest.mark.skipif(shutil.which("semc-ctffind") is None,
                                reason="semc-ctffind is not installed (pip install -e .)")


@pytest.fixture(autouse=True)
def _fresh_versions(monkeypatch):
    for name in ("CTFFIND4", "CTFFIND5", "GCTF"):
        monkeypatch.delenv(f"SEMC_{name}_EXE", raising=False)
    monkeypatch.setenv("SEMC_CONFIG", "none")
    version_cache_clear()
    yield
    version_cache_clear()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("leginon")
    with mrcfile.new(folder / f"{FILENAME}.mrc") as mrc:
        mrc.set_data(synthetic_micrograph(n=512))
        mrc.voxel_size = 1.0
    return folder


def inputs_for(images: Path) -> ExposureInputs:
    return ExposureInputs(exposure_id=EXPOSURE, session_id=1, session_name="26nov23a", filename=FILENAME,
                          preset_name="en", movie_path=str(images / "absent.frames.mrc"), image_path=str(images),
                          pixel_size_angstrom=1.0, voltage_kv=300.0, cs_mm=2.7, n_frames=1,
                          dose_per_frame_e_per_a2=None, total_dose_e_per_a2=None, frame_time_ms=None,
                          camera_name="sim", nominal_defocus_angstrom=15000.0)


def config_for(rundir: Path, engine: str, **changes):
    config = ctf_task_config(rundir=str(rundir), box=256, resmin=30.0, resmax=5.0, defocus_range=(5000.0, 30000.0),
                             engine=engine, external_timeout_s=changes.pop("timeout", 120.0))
    if changes:
        config = dataclasses.replace(config, params=dataclasses.replace(config.params, **changes))
    return config


def program(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def gctf_program(tmp_path: Path) -> str:
    return program(tmp_path, "Gctf", f'exec {sys.executable} {FAKE_GCTF} "$@"\n')


def test_ctffind4_engine_on_semc_ctffind_gives_the_builtin_outcome_and_files(images, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMC_CTFFIND4_EXE", "semc-ctffind")
    builtin = ctfestimation_run(inputs_for(images), config_for(tmp_path / "b", "builtin"), attempt_key="1")
    external = ctfestimation_run(inputs_for(images), config_for(tmp_path / "e", "ctffind4"), attempt_key="1")
    for name in ("defocus_1_angstrom", "defocus_2_angstrom", "azimuth_degree", "cross_correlation",
                 "fit_resolution_angstrom", "phase_shift_radian"):
        assert getattr(external, name) == pytest.approx(getattr(builtin, name), abs=0.01), name
    mean = 0.5 * (external.defocus_1_angstrom + external.defocus_2_angstrom)
    assert mean == pytest.approx(0.5 * (TRUTH["defocus_1_angstrom"] + TRUTH["defocus_2_angstrom"]), rel=0.03)
    assert external.short_name == builtin.short_name == SHORT
    assert {k: Path(v).relative_to(tmp_path / "e") for k, v in external.files.items()} == {
        k: Path(v).relative_to(tmp_path / "b") for k, v in builtin.files.items()}
    assert all(Path(p).is_file() for p in external.files.values())
    log = (tmp_path / "e" / f"{SHORT}.ctffind4.log").read_text()
    assert "Input image file name" in log and f"program ctffind4 version {SEMC_CTFFIND_VERSION}" in log
    assert not list((tmp_path / "e").glob(".attempts/*")) and not (tmp_path / "e" / ".failed").exists()


def test_the_aligned_sum_only_in_memory_is_written_for_the_program(images, tmp_path, monkeypatch):
    from semc.base.io import read_image

    monkeypatch.setenv("SEMC_CTFFIND4_EXE", "semc-ctffind")
    image, _ = read_image(images / f"{FILENAME}.mrc")
    motion = type("Motion", (), {"output_pixel_size_angstrom": 1.0, "sum_path": str(tmp_path / "gone_c.mrc")})()
    builtin = ctfestimation_run(inputs_for(images), config_for(tmp_path / "b", "builtin"), image=image,
                                motioncorrection=motion, attempt_key="2")
    external = ctfestimation_run(inputs_for(images), config_for(tmp_path / "e", "ctffind4"), image=image,
                                 motioncorrection=motion, attempt_key="2")
    assert external.short_name == short_image_name(f"{FILENAME}-a")
    assert (external.defocus_1_angstrom, external.defocus_2_angstrom) == pytest.approx(
        (builtin.defocus_1_angstrom, builtin.defocus_2_angstrom), abs=0.01)


def test_gctf_engine_gives_the_builtin_outcome_and_the_classic_gctf_mapping(images, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMC_GCTF_EXE", gctf_program(tmp_path))
    gctf_search = {"astigmatism_restraint_angstrom": 1000.0}  # Gctf always restrains astigmatism
    builtin = ctfestimation_run(inputs_for(images), config_for(tmp_path / "b", "builtin", **gctf_search),
                                attempt_key="3")
    external = ctfestimation_run(inputs_for(images), config_for(tmp_path / "e", "gctf", **gctf_search),
                                 attempt_key="3")
    assert (external.defocus_1_angstrom, external.defocus_2_angstrom, external.azimuth_degree) == pytest.approx(
        (builtin.defocus_1_angstrom, builtin.defocus_2_angstrom, builtin.azimuth_degree), abs=0.01)
    assert external.fit_resolution_angstrom == pytest.approx(builtin.fit_resolution_angstrom, abs=1e-3)
    assert set(external.files) >= {"diagnostic", "results", "graph3", "graph4", "star", "epa"}
    assert Path(external.files["diagnostic"]).parent.name == "opimages"
    # what the store computes from the outcome equals classic gctf.py's mapping of Gctf's own log
    log = gctf_log_parse(Path(external.files["results"]).read_text())
    stored = apctfdata_values_from_ctffind(
        CtffindResult(1, external.defocus_1_angstrom, external.defocus_2_angstrom, external.azimuth_degree,
                      external.phase_shift_radian, external.cross_correlation, external.fit_resolution_angstrom),
        amplitude_contrast=0.07, cs_mm=2.7, start_defocus_angstrom=15000.0)
    assert stored == apctfdata_values_from_gctf(log, amplitude_contrast=0.07, cs_mm=2.7,
                                                start_defocus_angstrom=15000.0)
    assert "Version: v1.06" in (tmp_path / "e" / f"{SHORT}.gctf.log").read_text()


def _kept(tmp_path: Path, key: str) -> Path:
    return tmp_path / "e" / ".failed" / f"ctf-{key}"


def _assert_names(error, *, program_name: str, version: str | None, path: str | None = None) -> None:
    text = str(error)
    assert f"program={program_name}" in text and f"exposure={EXPOSURE}" in text and "step=ctfestimation" in text
    if version:
        assert f"version={version}" in text
    if path:
        assert path in text


def test_a_missing_executable_names_the_engine_the_setting_and_the_path(images, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMC_CTFFIND4_EXE", str(tmp_path / "no-such-ctffind"))
    with pytest.raises(ConfigurationError) as info:
        ctfestimation_run(inputs_for(images), config_for(tmp_path / "e", "ctffind4"), attempt_key="4")
    assert info.value.key == "SEMC_CTFFIND4_EXE" and "no-such-ctffind" in str(info.value)
    assert "engines.ctffind4_exe" in str(info.value) and "step=ctfestimation" in str(info.value)


@pytest.mark.parametrize(("engine", "banner", "version"), [("ctffind4", "CTFFIND version 3.14.2", "3.14.2"),
                                                            ("gctf", "Gctf Version: v1.20", "1.20")])
def test_an_unsupported_version_names_program_and_version(images, tmp_path, monkeypatch, engine, banner, version):
    monkeypatch.setenv(f"SEMC_{engine.upper()}_EXE", program(tmp_path, engine, f"echo '{banner}'\n"))
    with pytest.raises(UnsupportedVersion) as info:
        ctfestimation_run(inputs_for(images), config_for(tmp_path / "e", engine), attempt_key="5")
    assert info.value.version == version and f"version={version}" in str(info.value)


_CTFFIND_HEAD = ("if [ \"$1\" = --version ]; then echo 'CTFFIND version 4.1.14'; exit 0; fi\n"
                 "printf 'Input image file name [input.mrc]   : '\nread answer\necho \"reading $answer\"\n")


@pytest.mark.parametrize(("behaviour", "error"), [("kill -SEGV $$", ExternalProgramFailed),
                                                  ("exit 3", ExternalProgramFailed),
                                                  ("sleep 600", ExternalProgramTimeout)])
def test_a_ctffind_that_crashes_or_hangs_is_a_typed_failure_with_its_output_kept(images, tmp_path, monkeypatch,
                                                                                 behaviour, error):
    monkeypatch.setenv("SEMC_CTFFIND4_EXE", program(tmp_path, "ctffind", _CTFFIND_HEAD + behaviour + "\n"))
    with pytest.raises(error) as info:
        ctfestimation_run(inputs_for(images), config_for(tmp_path / "e", "ctffind4", timeout=3.0), attempt_key="6")
    if error is ExternalProgramFailed:
        assert type(info.value) is ExternalProgramFailed
    log = tmp_path / "e" / f"{SHORT}.ctffind4.log"
    _assert_names(info.value, program_name="ctffind4", version="4.1.14", path=str(log))
    assert f"reading {SHORT}.mrc" in log.read_text()
    assert (_kept(tmp_path, "6") / f"{SHORT}.mrc").exists()
    assert not list((tmp_path / "e").glob(f"{SHORT}-pow*")) and not list((tmp_path / "e").glob(".attempts/*"))


def test_a_results_file_with_the_wrong_number_of_columns_names_program_version_and_kept_file(images, tmp_path,
                                                                                          monkeypatch):
    # a CTFFIND5 dialog (semc-ctffind --ctffind5) that writes CTFFIND4's 7-column results
    ctffind = shutil.which("semc-ctffind")
    monkeypatch.setenv("SEMC_CTFFIND5_EXE", program(
        tmp_path, "ctffind5", "if [ \"$1\" = --version ]; then echo 'CTFFIND version 5.0.2'; exit 0; fi\n"
                              f'exec {ctffind} --ctffind5 "$@"\n'))
    with pytest.raises(LogParseError) as info:
        ctfestimation_run(inputs_for(images), config_for(tmp_path / "e", "ctffind5"), attempt_key="7")
    kept = _kept(tmp_path, "7") / f"{SHORT}-pow.txt"
    _assert_names(info.value, program_name="ctffind5", version="5.0.2", path=str(kept))
    assert "has 7 columns, ctffind5 writes 10" in str(info.value)
    assert kept.is_file() and (tmp_path / "e" / f"{SHORT}.ctffind5.log").is_file()
    assert not (tmp_path / "e" / f"{SHORT}-pow.txt").exists()


@pytest.mark.parametrize(("mode", "error", "message"), [
    ("star-empty", LogParseError, "no loop_ with data rows"),
    ("crash", ExternalProgramFailed, "CUDA error"),
])
def test_a_gctf_that_fails_or_writes_a_star_without_values_is_a_typed_failure(images, tmp_path, monkeypatch, mode,
                                                                              error, message):
    monkeypatch.setenv("SEMC_GCTF_EXE", gctf_program(tmp_path))
    monkeypatch.setenv("FAKE_GCTF_MODE", mode)
    with pytest.raises(error) as info:
        ctfestimation_run(inputs_for(images), config_for(tmp_path / "e", "gctf"), attempt_key="8")
    path = _kept(tmp_path, "8") / "micrographs_all_gctf.star" if mode == "star-empty" else None
    _assert_names(info.value, program_name="gctf", version="1.06", path=str(path) if path else None)
    assert message in str(info.value)
    assert (tmp_path / "e" / f"{SHORT}.gctf.log").is_file()
    if path:
        assert path.is_file()
    assert not (tmp_path / "e" / "opimages").exists() or not any((tmp_path / "e" / "opimages").iterdir())


def test_a_micrograph_not_yet_written_is_deferred_without_keeping_anything(tmp_path, monkeypatch):
    from semc.base.errors import InputNotReady

    monkeypatch.setenv("SEMC_CTFFIND4_EXE", "semc-ctffind")
    with pytest.raises(InputNotReady):
        ctfestimation_run(inputs_for(tmp_path), config_for(tmp_path / "e", "ctffind4"), attempt_key="9")
    assert not (tmp_path / "e" / ".failed").exists()
