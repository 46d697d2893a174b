"""semc-ctffind as CTFFIND 4.1: here-documents, a terminal (pexpect), the classic Appion prompt
table, RELION 3.1's relion_run_ctffind, bad answers, and the files it writes."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pexpect
import pytest
import starfile

from semc.ctfestimation.cli import ctffind_main
from tests.ctfestimation.conftest import TRUTH, relion_micrographs_star
from tests.realdata import REALDATA

EXE = shutil.which("semc-ctffind")


def _answers(micrograph, diagnostic, *, box=512, restraint=None, phase=False, expert=None):
    lines = [str(micrograph), str(diagnostic), "1.0", "300", "2.7", "0.07", str(box), "30", "4", "5000", "40000", "100", "no", "no"]
    lines += ["yes", str(restraint)] if restraint else ["no"]
    lines += ["yes", "0", "3.15", "0.5"] if phase else ["no"]
    lines += ["yes", *expert] if expert else ["no"]
    return "\n".join(lines) + "\n"


def _run(args, text, cwd):
    return subprocess.run([EXE, *args], check=False, input=text, capture_output=True, text=True, cwd=cwd, timeout=300)


def _txt_row(path):
    rows = [line.split() for line in Path(path).read_text().splitlines() if not line.startswith("#")]
    assert len(rows) == 1 and len(rows[0]) == 7
    return [float(v) for v in rows[0]]


def _assert_truth(row, tolerance_angstrom=60.0, tolerance_degree=3.0):
    assert row[1] == pytest.approx(TRUTH["defocus_1"], abs=tolerance_angstrom)
    assert row[2] == pytest.approx(TRUTH["defocus_2"], abs=tolerance_angstrom)
    assert abs((row[3] - TRUTH["azimuth"] + 90) % 180 - 90) <= tolerance_degree


pytestmark = pytest.mark.skipif(EXE is None, reason="semc-ctffind is not installed")


def test_here_document_answers_produce_ctffind_files_with_the_true_ctf(micrograph_path, tmp_path):
    done = _run([], _answers(micrograph_path, "diag.mrc"), tmp_path)
    assert done.returncode == 0, done.stdout
    row = _txt_row(tmp_path / "diag.txt")
    _assert_truth(row)
    assert "Summary of results" in done.stdout and "Estimated defocus values" in done.stdout
    avrot = [line for line in (tmp_path / "diag_avrot.txt").read_text().splitlines() if not line.startswith("#")]
    assert len(avrot) == 6 and len({len(line.split()) for line in avrot}) == 1
    import mrcfile
    with mrcfile.open(tmp_path / "diag.mrc") as mrc:
        assert mrc.data.shape == (512, 512)


def test_expert_options_branch_is_read_in_order(micrograph_path, tmp_path):
    done = _run(["-j", "2"], _answers(micrograph_path, "diag.mrc", restraint=200, expert=["yes", "no", "1"]), tmp_path)
    assert done.returncode == 0, done.stdout
    _assert_truth(_txt_row(tmp_path / "diag.txt"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((2, "abc"), "not a valid number"),
        ((12, "maybe"), "not a valid yes/no"),
        ((0, "missing.mrc"), "does not exist"),
        ((6, "513"), "box size must be even"),
    ],
)
def test_bad_answers_exit_non_zero_with_a_message_and_no_traceback(micrograph_path, tmp_path, change, message):
    lines = _answers(micrograph_path, "diag.mrc").splitlines()
    lines[change[0]] = change[1]
    done = _run([], "\n".join(lines) + "\n", tmp_path)
    assert done.returncode != 0
    assert message in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_truncated_input_and_unknown_flags_fail_cleanly(micrograph_path, tmp_path):
    short = _run([], "\n".join(_answers(micrograph_path, "d.mrc").splitlines()[:5]) + "\n", tmp_path)
    assert short.returncode != 0 and "end of input" in short.stdout and "Traceback" not in short.stderr
    flag = _run(["--bogus"], "", tmp_path)
    assert flag.returncode != 0 and "unknown option" in flag.stdout


def test_classic_appion_prompt_table_through_a_terminal(micrograph_path, tmp_path):
    """The prompts of appion-compat §5.6, matched one by one as Appion's pexpect runner does."""
    table = [
        ("Input image file name", str(micrograph_path)), ("Output diagnostic", "mic-pow.mrc"), ("Pixel size", "1.0"),
        ("Acceleration voltage", "300"), ("Spherical aberration", "2.7"), ("Amplitude contrast", "0.07"),
        ("Size of amplitude spectrum to compute", "512"), ("Minimum resolution", "30"), ("Maximum resolution", "4"),
        ("Minimum defocus", "10000"), ("Maximum defocus", "20000"), ("Defocus search step", "100"),
        ("Do you know what astigmatism is present?", "no"), ("Slower, more exhaustive search?", "yes"),
        ("Use a restraint on astigmatism?", "yes"), ("Expected (tolerated) astigmatism", "500"),
        ("Find additional phase shift?", "no"), ("Do you want to set expert options?", "no"),
    ]
    child = pexpect.spawn(EXE, cwd=str(tmp_path), encoding="utf-8", timeout=120)
    for prompt, answer in table:
        child.expect_exact(prompt)
        child.sendline(answer)
    child.expect_exact("Summary of results")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    _assert_truth(_txt_row(tmp_path / "mic-pow.txt"))


def test_classic_appion_blind_answers_with_a_trailing_empty_line(micrograph_path, tmp_path):
    done = _run([], _answers(micrograph_path, "mic-pow.mrc", restraint=500) + "\n", tmp_path)
    assert done.returncode == 0, done.stdout
    _assert_truth(_txt_row(tmp_path / "mic-pow.txt"))


def test_ctffind5_prompts_are_accepted_when_asked_for(micrograph_path, tmp_path):
    lines = _answers(micrograph_path, "d5.mrc").splitlines()
    lines[-1:-1] = ["no", "no"]  # Determine sample tilt? / Determine samnple thickness? before the expert question
    done = _run(["--ctffind5"], "\n".join(lines) + "\n", tmp_path)
    assert done.returncode == 0, done.stdout
    assert "Determine samnple thickness?" in done.stdout


def test_movie_branch_asks_for_frames_to_average(tmp_path):
    from semc.base.io import write_mrc
    from tests.ctfestimation.synthetic import synthetic_micrograph

    frames = np.stack([synthetic_micrograph(shape=(768, 768), pixel_size_angstrom=1.0, voltage_kv=300, cs_mm=2.7,
                                            amplitude_contrast=0.07, defocus_1_angstrom=15400, defocus_2_angstrom=14600,
                                            azimuth_degree=33, seed=s, dose_per_pixel=5) for s in range(4)])
    write_mrc(tmp_path / "movie.mrc", frames, pixel_size_angstrom=1.0)
    lines = _answers(tmp_path / "movie.mrc", "m.mrc").splitlines()
    lines[1:1] = ["yes", "2"]
    done = _run([], "\n".join(lines) + "\n", tmp_path)
    assert done.returncode == 0, done.stdout
    assert "Input is a movie (stack of frames)" in done.stdout and "Number of frames to average together" in done.stdout
    _assert_truth(_txt_row(tmp_path / "m.txt"), tolerance_angstrom=150, tolerance_degree=5)


def test_help_and_in_process_entry_point(micrograph_path, tmp_path, capsys):
    import io

    assert ctffind_main(["--help"]) == 0
    assert "--amplitude-spectrum-input" in capsys.readouterr().out
    os.chdir(tmp_path)
    out = io.StringIO()
    assert ctffind_main([], stdin=io.StringIO(_answers(micrograph_path, "inproc.mrc")), stdout=out) == 0
    _assert_truth(_txt_row(tmp_path / "inproc.txt"))


@pytest.mark.skipif(shutil.which("relion_run_ctffind") is None, reason="RELION 3.1 not installed")
def test_relion_31_runs_semc_ctffind_as_ctffind4_and_its_star_holds_our_values(micrograph_path, tmp_path):
    shutil.copy(micrograph_path, tmp_path / "mic1.mrc")
    relion_micrographs_star(tmp_path / "mics.star")
    # RELION 3.1 runs the here-document script with csh unless RELION_SHELL says otherwise (csh is not installed here)
    env = {**os.environ, "RELION_SHELL": "bash"}
    done = subprocess.run(
        ["relion_run_ctffind", "--i", "mics.star", "--o", "CtfFind/", "--ctffind_exe", EXE, "--is_ctffind4", "--Box", "512",
         "--ResMin", "30", "--ResMax", "4", "--dFMin", "5000", "--dFMax", "40000", "--FStep", "200", "--dAst", "100"],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    script = (tmp_path / "CtfFind" / "mic1_ctffind4.com").read_text()
    assert "<< EOF" in script  # the here-document RELION writes
    row = _txt_row(tmp_path / "CtfFind" / "mic1.txt")
    star = starfile.read(tmp_path / "CtfFind" / "micrographs_ctf.star")
    micrographs = star["micrographs"] if isinstance(star, dict) else star
    assert micrographs["rlnDefocusU"].iloc[0] == pytest.approx(row[1], abs=0.01)
    assert micrographs["rlnDefocusV"].iloc[0] == pytest.approx(row[2], abs=0.01)
    assert micrographs["rlnDefocusAngle"].iloc[0] == pytest.approx(row[3], abs=0.01)
    assert micrographs["rlnCtfFigureOfMerit"].iloc[0] == pytest.approx(row[5], abs=1e-4)
    _assert_truth(row)


SPECTRUM = REALDATA / "relion_tutorial_ps/spectra/20170629_00021_frameImage_PS.mrc"


@pytest.mark.skipif(not SPECTRUM.is_file(), reason="real data not present")
def test_amplitude_spectrum_input_as_relion_5_passes_it_matches_the_official_values(tmp_path):
    """Official CTFFIND values of movie 00021: 10865.0 / 10571.5 Å, 79.13 degrees (reference_values.tsv)."""
    answers = [str(SPECTRUM), "ps.ctf", "1.39955", "200", "1.4", "0.1", "512", "30", "5", "5000", "50000", "500",
               "no", "yes", "yes", "100", "no", "no"]
    done = _run(["--amplitude-spectrum-input"], "\n".join(answers) + "\n", tmp_path)
    assert done.returncode == 0, done.stdout
    row = _txt_row(tmp_path / "ps.txt")
    assert 0.5 * (row[1] + row[2]) == pytest.approx(0.5 * (10865.0 + 10571.5), abs=100)
    assert row[1] - row[2] == pytest.approx(10865.0 - 10571.5, abs=100)
    assert abs((row[3] - 79.13 + 90) % 180 - 90) <= 5


def test_ctffind5_here_document_is_accepted_without_a_flag(micrograph_path, tmp_path):
    lines = _answers(micrograph_path, "d5.mrc").splitlines()
    lines[-1:-1] = ["no", "no"]
    done = _run([], "\n".join(lines) + "\n", tmp_path)
    assert done.returncode == 0, done.stdout
    _assert_truth(_txt_row(tmp_path / "d5.txt"))


@pytest.mark.skipif(shutil.which("relion_run_ctffind") is None or not SPECTRUM.is_file(), reason="RELION 3.1 or real data missing")
def test_relion_31_given_spectrum_route_runs_amplitude_spectrum_input_and_matches_official_values(tmp_path):
    """relion_run_ctffind --use_given_ps passes --amplitude-spectrum-input (movie 00021; official 10865.0 / 10571.5 / 79.13)."""
    import mrcfile

    shutil.copy(SPECTRUM, tmp_path / "mic21_PS.mrc")
    with mrcfile.new(tmp_path / "mic21.mrc") as mrc:
        mrc.set_data(np.zeros((3838, 3710), np.float32))
        mrc.voxel_size = 0.885
    (tmp_path / "mics.star").write_text(
        "# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n_rlnMicrographPixelSize #3\n"
        "_rlnVoltage #4\n_rlnSphericalAberration #5\n_rlnAmplitudeContrast #6\nopticsGroup1 1 0.885 200 1.4 0.1\n\n"
        "# version 30001\n\ndata_micrographs\n\nloop_\n_rlnMicrographName #1\n_rlnOpticsGroup #2\n_rlnCtfPowerSpectrum #3\n"
        "mic21.mrc 1 mic21_PS.mrc\n"
    )
    done = subprocess.run(
        ["relion_run_ctffind", "--i", "mics.star", "--o", "CtfFind/", "--ctffind_exe", EXE, "--is_ctffind4", "--use_given_ps",
         "--Box", "512", "--ResMin", "30", "--ResMax", "5", "--dFMin", "5000", "--dFMax", "50000", "--FStep", "500", "--dAst", "100"],
        check=False, cwd=tmp_path, env={**os.environ, "RELION_SHELL": "bash"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--amplitude-spectrum-input" in (tmp_path / "CtfFind" / "mic21_PS_ctffind4.com").read_text()
    star = starfile.read(tmp_path / "CtfFind" / "micrographs_ctf.star")
    micrographs = star["micrographs"] if isinstance(star, dict) else star
    u, v, angle = (float(micrographs[k].iloc[0]) for k in ("rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"))
    assert 0.5 * (u + v) == pytest.approx(0.5 * (10865.0 + 10571.5), abs=100)
    assert u - v == pytest.approx(10865.0 - 10571.5, abs=100)
    assert abs((angle - 79.13 + 90) % 180 - 90) <= 5
