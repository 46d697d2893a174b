"""The external motion-correction task with programs that misbehave after a normal start: each bad
output is its own typed error naming program, version, exposure and path, with the raw output kept."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from semc.base.engines import version_cache_clear
from semc.base.errors import LogParseError
from semc.base.exposure import ExposureInputs
from semc.motioncorrection.task import MotionCorrectionTaskConfig, motioncorrection_run
from semc.motioncorrection.types import MotionCorrectionParams

GOLDEN_LOG = Path(__file__).resolve().parents[1] / "data" / "motioncor2" / "1.6.4" / "motioncor2_1.6.4_log.txt"
EXPOSURE = 5005


@pytest.fixture(autouse=True)
def _fresh_versions(monkeypatch):
    monkeypatch.setenv("SEMC_CONFIG", "none")
    version_cache_clear()
    yield
    version_cache_clear()


def _inputs(tmp_path: Path) -> ExposureInputs:
    movie = tmp_path / "mic_5005.frames.mrc"
    with mrcfile.new(movie) as mrc:
        mrc.set_data(np.random.default_rng(1).poisson(3.0, size=(4, 64, 64)).astype(np.float32))
    return ExposureInputs(exposure_id=EXPOSURE, session_id=1, session_name="s", filename="mic_5005",
                          preset_name="enn", movie_path=str(movie), image_path=str(tmp_path), pixel_size_angstrom=1.0,
                          voltage_kv=300.0, cs_mm=2.7, n_frames=4, dose_per_frame_e_per_a2=None,
                          total_dose_e_per_a2=None, frame_time_ms=None, camera_name="sim")


def _program(tmp_path: Path, body: str) -> str:
    path = tmp_path / "MotionCor2"
    path.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'MotionCor2 version 1.6.4'; exit 0; fi\n" + body)
    path.chmod(0o755)
    return str(path)


def _config(tmp_path: Path) -> MotionCorrectionTaskConfig:
    return MotionCorrectionTaskConfig(params=MotionCorrectionParams(patches_xy=(0, 0)), rundir=str(tmp_path / "run"),
                                      engine="motioncor2", external_timeout_s=30.0)


def test_a_program_that_logs_shifts_but_writes_no_sum_is_a_parse_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMC_MOTIONCOR2_EXE", _program(tmp_path, f"cat {GOLDEN_LOG}\n"))
    with pytest.raises(LogParseError) as info:
        motioncorrection_run(_inputs(tmp_path), _config(tmp_path), attempt_key="1")
    log = tmp_path / "run" / "mic_5005_st_Log.motioncor2.txt"
    text = str(info.value)
    assert "wrote no mic_5005_c.mrc" in text and "program=motioncor2" in text and "version=1.6.4" in text
    assert f"exposure={EXPOSURE}" in text and str(log) in text
    assert "Full-frame alignment" in log.read_text()
    assert not list((tmp_path / "run").glob("*_c*.mrc")) and not list((tmp_path / "run").glob(".attempts/*"))


def test_a_program_whose_log_has_no_shifts_is_a_parse_error_with_the_log_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMC_MOTIONCOR2_EXE", _program(tmp_path, "echo 'Loading movie... done'\n"))
    with pytest.raises(LogParseError) as info:
        motioncorrection_run(_inputs(tmp_path), _config(tmp_path), attempt_key="2")
    assert info.value.program and info.value.version == "1.6.4" and info.value.exposure_id == EXPOSURE
    assert "Loading movie" in (tmp_path / "run" / "mic_5005_st_Log.motioncor2.txt").read_text()
