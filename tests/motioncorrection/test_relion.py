"""Against the installed RELION 3.1.3: as external MotionCor2, and accuracy vs --use_own."""

import os
import shutil
import subprocess

import mrcfile
import numpy as np
import pytest
import starfile
import tifffile

from semc.motioncorrection.calc.internal.correct import correct_frames
from semc.motioncorrection.types import MotionCorrectionParams

from .conftest import frc, make_movie, shift_fourier

pytestmark = [pytest.mark.relion,
              pytest.mark.skipif(shutil.which("relion_run_motioncorr") is None, reason="RELION not installed")]


@pytest.fixture(scope="module")
def movie_on_disk(tmp_path_factory):
    d = tmp_path_factory.mktemp("relion")
    m = make_movie(shape=(1024, 1024), n_frames=20, dose_per_pixel=1.0, seed=21)
    tifffile.imwrite(d / "mov.tif", m.frames.astype(np.uint8), compression="lzw")
    return d, m


@pytest.fixture(scope="module")
def relion_stack_shim(tmp_path_factory):
    """The LD_PRELOAD shim that works around RELION 3.1.3's unassigned GPU count (see the C file)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler is needed to build the RELION shim (scripts/install.sh installs gcc)"
    out = tmp_path_factory.mktemp("shim") / "relion_stack_shim.so"
    src = os.path.join(os.path.dirname(__file__), "relion_stack_shim.c")
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(out), src, "-ldl"], check=True)
    return str(out)


def test_relion_runs_semc_motioncor2_and_its_star_holds_our_shifts(movie_on_disk, relion_stack_shim):
    d, movie = movie_on_disk
    # No --gpu: this Debian RELION build has no CUDA, and with --gpu it divides by its device count
    # (0) before starting any MotionCor2. Without it RELION still computes "-Gpu rank % devCount"
    # from a variable it never assigns; the shim makes that read deterministic (non-zero).
    cmd = ["relion_run_motioncorr", "--i", "mov.tif", "--o", "MC/", "--use_motioncor2",
           "--motioncor2_exe", shutil.which("semc-motioncor2"), "--angpix", "1", "--voltage", "300",
           "--dose_per_frame", "1", "--dose_weighting", "--patch_x", "5", "--patch_y", "5"]
    env = {**os.environ, "LD_PRELOAD": relion_stack_shim}
    proc = subprocess.run(cmd, cwd=d, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    star = starfile.read(d / "MC" / "mov.star")
    shifts = star["global_shift"][["rlnMicrographShiftX", "rlnMicrographShiftY"]].to_numpy()
    out_text = (d / "MC" / "mov.out").read_text()
    assert "Full-frame alignment shift" in out_text
    truth = -(movie.motion_px - movie.motion_px[0])
    assert np.sqrt(np.mean((shifts - truth) ** 2)) < 0.1


@pytest.mark.slow
def test_our_sum_is_at_least_as_good_as_relion_own(movie_on_disk):
    d, movie = movie_on_disk
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = ["relion_run_motioncorr", "--i", "mov.tif", "--o", "OWN/", "--use_own", "--j", "2", "--angpix", "1",
           "--voltage", "300", "--patch_x", "5", "--patch_y", "5", "--bfactor", "150"]
    subprocess.run(cmd, cwd=d, env=env, check=True, capture_output=True)
    with mrcfile.open(d / "OWN" / "mov.mrc") as mrc:
        theirs = np.array(mrc.data, dtype=np.float64)[::-1]  # RELION flips TIFF rows on read
    ours = correct_frames(movie.frames, params=MotionCorrectionParams(patches_xy=(5, 5)), workers=2)
    f, c_ours = frc(ours.sums["sum"], movie.clean)  # ours keeps the central frame in place, as the clean one
    # RELION keeps the first frame in place: its sum is the clean specimen moved by frame 1's motion
    _, c_theirs = frc(theirs, shift_fourier(movie.clean, *movie.motion_px[0]))
    band = (f > 0.02) & (f < 0.2)
    assert c_theirs[band].mean() > 0.3  # the two sums are compared in the same orientation
    assert c_ours[band].mean() >= c_theirs[band].mean() - 0.005
