"""Engine registry: names per step, executable from the environment, version detected once per process."""

from __future__ import annotations

import os
import stat
import sys
import textwrap

import pytest

from semc.base.engines import (
    EngineSpec,
    engine_names,
    engine_resolve,
    env_key_for,
    version_cache_clear,
)
from semc.base.errors import ConfigurationError, UnsupportedVersion


@pytest.fixture(autouse=True)
def _fresh_cache():
    version_cache_clear()
    yield
    version_cache_clear()


def fake_program(tmp_path, name: str, version_text: str) -> str:
    """A program that prints ``version_text`` for --version and counts its calls in <name>.calls."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""
        import sys
        with open({str(tmp_path / (name + '.calls'))!r}, "a") as fh:
            fh.write("x")
        if sys.argv[1:] == ["--version"]:
            print({version_text!r})
    """))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def calls(tmp_path, name: str) -> int:
    f = tmp_path / (name + ".calls")
    return len(f.read_text()) if f.exists() else 0


def test_each_step_lists_its_engines():
    assert set(engine_names("motioncorrection")) == {"builtin", "builtin-gpu", "motioncor2", "motioncor3"}
    assert set(engine_names("ctfestimation")) == {"builtin", "builtin-gpu", "ctffind4", "ctffind5", "gctf"}
    assert env_key_for("motioncor2") == "SEMC_MOTIONCOR2_EXE" and env_key_for("builtin-gpu") == "SEMC_BUILTIN_GPU_EXE"


def test_builtin_engines_need_no_executable():
    assert engine_resolve("motioncorrection", "builtin") == EngineSpec("motioncorrection", "builtin", False)


def test_an_unknown_engine_or_one_of_another_step_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="choose one of"):
        engine_resolve("motioncorrection", "ctffind4")
    with pytest.raises(ConfigurationError):
        engine_resolve("motioncorrection", "relion")


def test_executable_from_the_environment_and_version_detected_once(tmp_path):
    exe = fake_program(tmp_path, "mc2", "MotionCor2 version 1.6.4")
    env = {"SEMC_MOTIONCOR2_EXE": exe, "PATH": os.environ["PATH"]}
    spec = engine_resolve("motioncorrection", "motioncor2", env=env)
    again = engine_resolve("motioncorrection", "motioncor2", env=env)
    assert spec == again and spec.executable == exe and spec.version == "1.6.4" and spec.external
    assert spec.detected.log_format == "table" and spec.env_key == "SEMC_MOTIONCOR2_EXE"
    assert calls(tmp_path, "mc2") == 1  # cached per process, not per image


def test_an_unsupported_version_is_reported_when_the_engine_is_resolved(tmp_path):
    exe = fake_program(tmp_path, "mc2", "MotionCor2 version 1.4.0")
    with pytest.raises(UnsupportedVersion) as info:
        engine_resolve("motioncorrection", "motioncor2", env={"SEMC_MOTIONCOR2_EXE": exe})
    assert info.value.version == "1.4.0" and info.value.step == "motioncorrection"


def test_a_program_of_another_family_behind_the_name_is_refused(tmp_path):
    exe = fake_program(tmp_path, "mc", "MotionCor3 version 1.2.1")
    with pytest.raises(ConfigurationError, match="MotionCor3"):
        engine_resolve("motioncorrection", "motioncor2", env={"SEMC_MOTIONCOR2_EXE": exe})
    spec = engine_resolve("motioncorrection", "motioncor3", env={"SEMC_MOTIONCOR3_EXE": exe})
    assert spec.version == "1.2.1"


def test_ctffind_versions_pick_ctffind4_or_ctffind5(tmp_path):
    four = fake_program(tmp_path, "ctf4", "4.1.14")
    five = fake_program(tmp_path, "ctf5", "        Version : 5.0.2")
    assert engine_resolve("ctfestimation", "ctffind4", env={"SEMC_CTFFIND4_EXE": four}).version == "4.1.14"
    assert engine_resolve("ctfestimation", "ctffind5", env={"SEMC_CTFFIND5_EXE": five}).version == "5.0.2"
    with pytest.raises(ConfigurationError):
        engine_resolve("ctfestimation", "ctffind4", env={"SEMC_CTFFIND4_EXE": five})


def test_a_missing_executable_names_the_variable_to_set(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        engine_resolve("ctfestimation", "gctf", env={"PATH": str(tmp_path)})
    assert info.value.key == "SEMC_GCTF_EXE" and "Gctf" in str(info.value)


GCTF_BANNER = os.path.join(os.path.dirname(__file__), "..", "data", "gctf", "1.06", "gctf_help.txt")


def test_gctf_version_comes_from_its_banner_golden_text():
    from semc.ctfestimation.calc.external_gctf import GctfVersion, gctf_version_parse

    with open(GCTF_BANNER) as fh:
        banner = fh.read()
    assert gctf_version_parse(banner) == GctfVersion("gctf", "1.06")
    assert gctf_version_parse("Gctf-v1.18_sm_30_cu8.0_x86_64\nCUDA version 8.0") == GctfVersion("gctf", "1.18")


def test_gctf_is_probed_with_help_and_a_nonzero_help_exit_still_gives_its_version(tmp_path):
    path = tmp_path / "Gctf"
    path.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'Gctf.calls'}\ncat {GCTF_BANNER}\nexit 1\n")
    path.chmod(0o755)
    spec = engine_resolve("ctfestimation", "gctf", env={"SEMC_GCTF_EXE": str(path), "SEMC_CONFIG": "none"})
    assert spec.version == "1.06" and spec.detected.engine == "gctf"
    assert (tmp_path / "Gctf.calls").read_text() == "--help\n"


def test_a_gctf_that_crashes_on_help_is_an_external_failure_not_a_version(tmp_path):
    from semc.base.errors import ExternalProgramFailed

    path = tmp_path / "Gctf"
    path.write_text("#!/bin/sh\nkill -SEGV $$\n")
    path.chmod(0o755)
    with pytest.raises(ExternalProgramFailed) as info:
        engine_resolve("ctfestimation", "gctf", env={"SEMC_GCTF_EXE": str(path), "SEMC_CONFIG": "none"})
    assert info.value.signal == 11 and info.value.step == "ctfestimation"


def test_the_executable_comes_from_semc_toml_when_the_environment_does_not_set_it(tmp_path):
    exe = fake_program(tmp_path, "ctffind-4.1.14", "CTFFIND version 4.1.14")
    toml = tmp_path / "semc.toml"
    toml.write_text(f'[engines]\nctffind4_exe = "{exe}"\nversion_timeout_s = 30\n')
    spec = engine_resolve("ctfestimation", "ctffind4", env={"SEMC_CONFIG": str(toml), "PATH": "/nonexistent"})
    assert spec.executable == exe and spec.version == "4.1.14"
    toml.write_text('[engines]\nctffind4_exe = "ctffind-not-here"\n')
    version_cache_clear()
    with pytest.raises(ConfigurationError) as info:
        engine_resolve("ctfestimation", "ctffind4", env={"SEMC_CONFIG": str(toml), "PATH": "/nonexistent"})
    assert "ctffind-not-here" in str(info.value) and str(toml) in info.value.source


def test_the_environment_overrides_semc_toml(tmp_path):
    exe = fake_program(tmp_path, "mc2", "MotionCor2 version 1.6.4")
    toml = tmp_path / "semc.toml"
    toml.write_text('[engines]\nmotioncor2_exe = "/opt/elsewhere/MotionCor2"\n')
    spec = engine_resolve("motioncorrection", "motioncor2", env={"SEMC_CONFIG": str(toml), "SEMC_MOTIONCOR2_EXE": exe})
    assert spec.executable == exe


def test_engine_versions_records_each_step_once_for_the_run(tmp_path):
    from semc.base.engines import engine_versions

    exe = fake_program(tmp_path, "mc2", "MotionCor2 version 1.6.4")
    env = {"SEMC_MOTIONCOR2_EXE": exe, "SEMC_CONFIG": "none"}
    versions = engine_versions({"motioncorrection": "motioncor2", "ctfestimation": "builtin"}, env=env)
    assert versions == {"motioncorrection": f"{exe} (1.6.4)", "ctfestimation": "builtin (semc)"}
    engine_versions({"motioncorrection": "motioncor2"}, env=env)
    assert calls(tmp_path, "mc2") == 1  # detected once per process


def test_configuration_lists_the_engine_keys():
    from semc.config import config_lines, config_load

    lines = "\n".join(config_lines(config_load({"SEMC_CONFIG": "none", "HOME": "/nonexistent",
                                                "SEMC_GCTF_EXE": "/opt/gctf/Gctf", "SEMC_EXTERNAL_TIMEOUT_S": "900"})))
    for key in ("engines.motioncor2_exe", "engines.motioncor3_exe", "engines.ctffind4_exe", "engines.ctffind5_exe",
                "engines.version_timeout_s"):
        assert key in lines
    assert "engines.gctf_exe = '/opt/gctf/Gctf'   (environment SEMC_GCTF_EXE)" in lines
    assert "engines.timeout_s = 900   (environment SEMC_EXTERNAL_TIMEOUT_S)" in lines


def test_a_version_probe_that_hangs_is_killed_after_the_configured_time(tmp_path):
    import time

    from semc.base.errors import ExternalProgramTimeout

    path = tmp_path / "ctffind"
    path.write_text("#!/bin/sh\nsleep 600\n")
    path.chmod(0o755)
    t0 = time.monotonic()
    with pytest.raises(ExternalProgramTimeout) as info:
        engine_resolve("ctfestimation", "ctffind4", env={"SEMC_CTFFIND4_EXE": str(path), "SEMC_CONFIG": "none",
                                                         "SEMC_VERSION_TIMEOUT_S": "1"})
    assert time.monotonic() - t0 < 30 and info.value.program == "ctffind4"
