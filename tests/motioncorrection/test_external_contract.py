"""Contract: engine ``motioncor2`` pointed at SEMC's own ``semc-motioncor2`` (a real process speaking
MotionCor2's command line and log) gives the shifts and files of engine ``builtin`` (the Python API).

The external path is the production one: the engine registry resolves the executable and detects the
version (``--version``), the pure builder makes the argv, the one runner runs it, the version-pinned parser
reads the log. Only a missing executable skips (explicitly); a broken program fails.
"""

from __future__ import annotations

import shutil

import mrcfile
import numpy as np
import pytest
import tifffile

from semc.base.engines import engine_resolve, version_cache_clear
from semc.base.external import run
from semc.motioncorrection.calc.external import (
    MotionCor2Params,
    fmintfile_text,
    motioncor2_command,
    motioncor_log_parse,
    rendered_frame_count,
)

from .conftest import make_movie

EXE = "semc-motioncor2"


@pytest.fixture(scope="module")
def engine():
    if shutil.which(EXE) is None:
        pytest.skip(f"{EXE} is not installed (pip install -e .); the contract cannot run")
    version_cache_clear()
    return engine_resolve("motioncorrection", "motioncor2", env={"SEMC_MOTIONCOR2_EXE": EXE})


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    d = tmp_path_factory.mktemp("contract")
    m = make_movie(shape=(256, 256), n_frames=12, dose_per_pixel=4.0, seed=21)
    path = d / "exposure_1001.tif"
    tifffile.imwrite(path, np.clip(m.frames, 0, 255).astype(np.uint8))
    return path, m


def _params(movie_path, out_path) -> MotionCor2Params:
    return MotionCor2Params(input_path=str(movie_path), output_path=str(out_path), iterations=7, tolerance_px=0.5,
                            dose_per_frame_e_per_a2=1.2, pixel_size_angstrom=1.0, voltage_kv=300.0)


def test_the_engine_registry_detects_semc_motioncor2_as_motioncor2_1_6(engine):
    assert engine.external and engine.executable and engine.detected.program == "MotionCor2"
    assert engine.detected.log_format == "table"


def test_motioncor2_engine_gives_the_builtin_shifts_and_files(engine, movie, tmp_path):
    from semc.motioncorrection.api import correct_movie_file
    from semc.motioncorrection.motioncor2_args import parse_motioncor2_argv
    from semc.motioncorrection.motioncor2_params import params_from_args

    movie_path, synthetic = movie
    ext_dir, int_dir = tmp_path / "external", tmp_path / "builtin"
    ext_dir.mkdir()
    int_dir.mkdir()
    argv = motioncor2_command(_params(movie_path, ext_dir / "exposure_1001_c.mrc"), executable=engine.executable)
    done = run(argv, cwd=ext_dir, timeout_s=300, log_path=ext_dir / "exposure_1001_c.motioncor2.log",
               exposure_id=1001, step="motioncorrection", program="motioncor2", version=engine.version)
    log = motioncor_log_parse(done.stdout, version=engine.detected, path=done.log_path)

    # the built-in engine on the same movie, with the same flags read the way the program reads them
    builtin = correct_movie_file(movie_path, output_path=int_dir / "exposure_1001_c.mrc",
                                 params=params_from_args(parse_motioncor2_argv(argv[1:]), str(movie_path)))
    s = np.array(builtin.motion.shifts_px)
    np.testing.assert_allclose(np.array(log.shifts_px), s - s[0], atol=6e-4)  # 1.6.x: relative to frame 1, %.3f
    truth = -(synthetic.motion_px - synthetic.motion_px[0])
    assert np.sqrt(np.mean((np.array(log.shifts_px) - truth) ** 2)) < 0.2

    assert set(builtin.output_paths) >= {"sum", "dose_weighted"}
    for kind, path in builtin.output_paths.items():
        twin = ext_dir / path.split("/")[-1]
        assert str(twin) in log.output_paths or not log.output_paths
        with mrcfile.open(path) as a, mrcfile.open(twin) as b:
            np.testing.assert_allclose(b.data, a.data, rtol=1e-5, atol=1e-5 * float(np.abs(a.data).max()))
    assert "Total time" in (ext_dir / "exposure_1001_c.motioncor2.log").read_text()


def test_a_missing_movie_is_an_external_failure_with_the_raw_output_kept(engine, tmp_path):
    from semc.base.errors import ExternalProgramFailed

    argv = motioncor2_command(_params(tmp_path / "absent.tif", tmp_path / "o_c.mrc"), executable=engine.executable)
    with pytest.raises(ExternalProgramFailed) as info:
        run(argv, cwd=tmp_path, timeout_s=120, log_path=tmp_path / "o.log", exposure_id=77,
            step="motioncorrection", program="motioncor2", version=engine.version)
    assert info.value.exposure_id == 77 and info.value.version == engine.version
    assert (tmp_path / "o.log").exists() and "absent.tif" in (tmp_path / "o.log").read_text()


def test_our_fmintfile_with_the_classic_quirk_renders_the_frames_motioncor2_renders(engine, movie, tmp_path):
    # production: 1539 raw EER frames, size 100 -> MotionCor2 reports 16 rendered frames (compat §5.5);
    # here 12 raw frames, size 5 -> lines "2 2 d" and "12 5 d" -> 2 + 5 + 5 = 3 rendered frames
    movie_path, _ = movie
    (tmp_path / "intfile.txt").write_text(fmintfile_text(n_raw_frames=12, rendered_frame_size=5,
                                                         dose_per_raw_frame_e_per_a2=0.4))
    params = MotionCor2Params(input_path=str(movie_path), output_path=str(tmp_path / "r_c.mrc"),
                              fmintfile_path=str(tmp_path / "intfile.txt"), dose_per_frame_e_per_a2=2.0,
                              pixel_size_angstrom=1.0, voltage_kv=300.0)
    done = run(motioncor2_command(params, executable=engine.executable), cwd=tmp_path, timeout_s=300,
               log_path=tmp_path / "r.log", exposure_id=1002, program="motioncor2", version=engine.version)
    log = motioncor_log_parse(done.stdout, version=engine.detected, path=done.log_path, exposure_id=1002)
    assert len(log.shifts_px) == rendered_frame_count(12, 5) == 3

