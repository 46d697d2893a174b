"""Engine registry: names per step, executable from the environment, version detected once per process."""

from __future__ import annotations

import os
import stat
import sys
import textwrap

import pytest

from semc.base.engines import EngineSpec, engine_names, engine_resolve, env_key_for, version_cache_clear
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
