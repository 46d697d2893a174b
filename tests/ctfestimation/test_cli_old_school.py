"""semc-ctffind --old-school-input / --old-school-input-ctffind4, run as the installed console script:
CTFFIND 3's stdin lines (and CTFFIND 4's two extra lines), CTFFIND's printed tables and files,
CTFFIND-like errors with a non-zero exit, and RELION 3.1 driving it as its CTFFIND 3."""

import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import starfile

from semc.base.io import write_mrc
from tests.ctfestimation.conftest import TRUTH, relion_micrographs_star
from tests.ctfestimation.synthetic import synthetic_micrograph

EXE = shutil.which("semc-ctffind")
pytestmark = pytest.mark.skipif(EXE is None, reason="semc-ctffind is not installed")

OPTICS = "2.7, 300, 0.07, 10000, 1.0"  # CS[mm], HT[kV], AmpCnst, XMAG, DStep[um]: 1 Å pixels
SEARCH = "512, 30, 4, 5000, 40000, 200, 100"  # Box, ResMin, ResMax, dFMin, dFMax, FStep, dAst


def _run(flag, lines, cwd):
    return subprocess.run([EXE, flag], check=False, input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=cwd, timeout=300)


def _txt_row(path):
    rows = [line.split() for line in Path(path).read_text().splitlines() if not line.startswith("#")]
    assert len(rows) == 1 and len(rows[0]) == 7
    return [float(v) for v in rows[0]]


def _near_truth(d1, d2, azimuth, *, tolerance=60.0, degrees=3.0, truth=TRUTH):
    return (abs(d1 - truth["defocus_1"]) <= tolerance and abs(d2 - truth["defocus_2"]) <= tolerance
            and abs((azimuth - truth["azimuth"] + 90) % 180 - 90) <= degrees)


def test_old_school_input_writes_ctffind_files_and_the_final_values_line(micrograph_path, tmp_path):
    done = _run("--old-school-input", [str(micrograph_path), "mic.ctf", OPTICS, SEARCH], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    row = _txt_row(tmp_path / "mic.txt")
    assert _near_truth(row[1], row[2], row[3])
    lines = done.stdout.splitlines()
    echoed = lines[lines.index(" CS[mm], HT[kV], AmpCnst, XMAG, DStep[um]") + 1].split()
    assert [float(v) for v in echoed] == [2.7, 300.0, 0.07, 10000.0, 1.0]
    assert "SEARCHING CTF PARAMETERS..." in done.stdout and "REFINING CTF PARAMETERS..." in done.stdout
    final = [line.split() for line in lines if line.endswith("Final Values")]
    assert len(final) == 1 and len(final[0]) == 6
    assert [float(v) for v in final[0][:4]] == pytest.approx([row[1], row[2], row[3], row[5]], abs=0.01)
    assert "Welcome to Ctffind" not in done.stdout  # no prompts in old-school mode
    assert (tmp_path / "mic.ctf").is_file() and (tmp_path / "mic_avrot.txt").is_file()


def test_old_school_input_accepts_a_ctffind3_script_with_comments(micrograph_path, tmp_path):
    lines = [str(micrograph_path), "mic.ctf", OPTICS + "\t\t\t!CS[mm],HT[kV],AmpCnst,XMAG,DStep[um]",
             SEARCH + "\t!Box,ResMin[A],ResMax[A],dFMin[A],dFMax[A],FStep[A],dAst[A]"]
    done = _run("--old-school-input", lines, tmp_path)
    assert done.returncode == 0, done.stdout
    assert _near_truth(*_txt_row(tmp_path / "mic.txt")[1:4])


def test_old_school_input_ctffind4_finds_the_phase_shift_of_a_phase_plate_micrograph(tmp_path):
    truth = {"defocus_1": 7300.0, "defocus_2": 6700.0, "azimuth": -20.0}
    image = synthetic_micrograph(shape=(1024, 1024), pixel_size_angstrom=1.0, voltage_kv=300, cs_mm=2.7, amplitude_contrast=0.07,
                                 defocus_1_angstrom=truth["defocus_1"], defocus_2_angstrom=truth["defocus_2"],
                                 azimuth_degree=truth["azimuth"], phase_shift_radian=math.radians(75), seed=4)
    write_mrc(tmp_path / "vpp.mrc", image, pixel_size_angstrom=1.0)
    done = _run("--old-school-input-ctffind4", ["vpp.mrc", "vpp.ctf", OPTICS, SEARCH, "0, 1", "1, 0, 3.15, 0.2"], tmp_path)
    assert done.returncode == 0, done.stdout
    row = _txt_row(tmp_path / "vpp.txt")
    assert _near_truth(row[1], row[2], row[3], truth=truth)
    assert abs(math.degrees(row[4]) - 75) <= 5
    assert "Additional phase shift" in done.stdout
    assert "Final Values" not in done.stdout  # CTFFIND prints it for --old-school-input only
    assert re.search(r"DFMID1\s+DFMID2\s+ANGAST\s+CC\n(\s+-?\d+\.\d+){4}\n", done.stdout)


def test_old_school_input_ctffind4_movie_line_averages_frames(tmp_path):
    frames = np.stack([synthetic_micrograph(shape=(768, 768), pixel_size_angstrom=1.0, voltage_kv=300, cs_mm=2.7,
                                            amplitude_contrast=0.07, defocus_1_angstrom=TRUTH["defocus_1"],
                                            defocus_2_angstrom=TRUTH["defocus_2"], azimuth_degree=TRUTH["azimuth"], seed=s,
                                            dose_per_pixel=5) for s in range(4)])
    write_mrc(tmp_path / "movie.mrc", frames, pixel_size_angstrom=1.0)
    done = _run("--old-school-input-ctffind4", ["movie.mrc", "m.ctf", OPTICS, SEARCH, "1, 2", "0, 0, 3.15, 0.2"], tmp_path)
    assert done.returncode == 0, done.stdout
    assert _near_truth(*_txt_row(tmp_path / "m.txt")[1:4], tolerance=150, degrees=5)
    refused = _run("--old-school-input", ["movie.mrc", "m2.ctf", OPTICS, SEARCH], tmp_path)
    assert refused.returncode != 0 and "Input stacks are only supported" in refused.stdout
    assert not (tmp_path / "m2.txt").exists()


@pytest.mark.parametrize(
    ("flag", "lines", "message"),
    [
        ("--old-school-input", ["{mic}", "d.ctf", "2.7, 300, 0.07, 10000"], "Bad number of arguments (4, expected 5) in line 3"),
        ("--old-school-input", ["missing.mrc", "d.ctf", OPTICS, SEARCH], "input file missing.mrc does not exist"),
        ("--old-school-input", ["{mic}", "d.ctf", OPTICS, "513, 30, 4, 5000, 40000, 200, 0"], "box size must be even"),
        ("--old-school-input-ctffind4", ["{mic}", "d.ctf", OPTICS, SEARCH, "0, 1", "1, 3, 1, 0.2"],
         "Minimum phase shift (3.000000) cannot be greater than maximum phase shift (1.000000)"),
    ],
)
def test_old_school_bad_input_exits_non_zero_with_a_message_and_no_traceback(micrograph_path, tmp_path, flag, lines, message):
    """Representative cases through the console script; every message is checked in test_ctffind_protocol.py."""
    done = _run(flag, [line.format(mic=micrograph_path) for line in lines], tmp_path)
    assert done.returncode != 0
    assert message in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "d.txt").exists()


def test_both_old_school_flags_are_refused(tmp_path):
    done = subprocess.run([EXE, "--old-school-input", "--old-school-input-ctffind4"], check=False, input="", capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode != 0 and "only one of" in done.stdout


@pytest.mark.skipif(shutil.which("relion_run_ctffind") is None, reason="RELION 3.1 not installed")
def test_relion_31_runs_semc_ctffind_as_its_ctffind3_and_its_star_holds_our_values(micrograph_path, tmp_path):
    """Without --is_ctffind4, RELION writes CTFFIND 3's lines and reads the "Final Values" line of the log."""
    shutil.copy(micrograph_path, tmp_path / "mic1.mrc")
    relion_micrographs_star(tmp_path / "mics.star")
    done = subprocess.run(
        ["relion_run_ctffind", "--i", "mics.star", "--o", "CtfFind/", "--ctffind_exe", f"{EXE} --old-school-input",
         "--Box", "512", "--ResMin", "30", "--ResMax", "4", "--dFMin", "5000", "--dFMax", "40000", "--FStep", "200", "--dAst", "100"],
        check=False, cwd=tmp_path, env={**os.environ, "RELION_SHELL": "bash"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    script = (tmp_path / "CtfFind" / "mic1_ctffind3.com").read_text()
    assert "--old-school-input" in script and "<< EOF" in script
    final = [line.split() for line in (tmp_path / "CtfFind" / "mic1_ctffind3.log").read_text().splitlines()
             if line.endswith("Final Values")]
    assert len(final) == 1
    star = starfile.read(tmp_path / "CtfFind" / "micrographs_ctf.star")
    micrographs = star["micrographs"] if isinstance(star, dict) else star
    u, v, angle, merit = (float(micrographs[k].iloc[0]) for k in ("rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle", "rlnCtfFigureOfMerit"))
    assert [u, v, angle, merit] == pytest.approx([float(x) for x in final[0][:4]], abs=0.01)
    assert _near_truth(u, v, angle)
