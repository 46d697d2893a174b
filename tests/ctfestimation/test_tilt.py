"""Sample tilt (CTFFIND 5's "Determine sample tilt?"): micrographs of tilted specimens simulated with a
known axis and angle, an untilted one, semc-ctffind's CTFFIND 5 prompt and columns, and refusals."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from semc.base.errors import InvalidParameters
from semc.base.io import read_image, write_mrc
from semc.ctfestimation.api import estimate_ctf, estimate_ctf_from_amplitude_spectrum
from semc.ctfestimation.types import CtfSearchParameters
from tests.ctfestimation.synthetic import synthetic_tilted_micrograph

TILT = {"axis": 200.0, "angle": 40.0, "mean": 15000.0}


def _params(**changes):
    return CtfSearchParameters(pixel_size_angstrom=1.0, max_resolution_angstrom=5, min_defocus_angstrom=5000,
                               max_defocus_angstrom=30000, defocus_step_angstrom=200, **changes)


@pytest.fixture(scope="module")
def tilted_path(tmp_path_factory):
    image = synthetic_tilted_micrograph(shape=(1280, 1280), pixel_size_angstrom=1.0, voltage_kv=300, cs_mm=2.7,
                                        amplitude_contrast=0.07, mean_defocus_angstrom=TILT["mean"], astigmatism_angstrom=400,
                                        azimuth_degree=20, tilt_axis_degree=TILT["axis"], tilt_angle_degree=TILT["angle"],
                                        levels=16, seed=2)
    path = tmp_path_factory.mktemp("tilt") / "tilted.mrc"
    write_mrc(path, image, pixel_size_angstrom=1.0)
    return path


def _axis_error(found, truth):
    return abs((found - truth + 180.0) % 360.0 - 180.0)


def test_tilt_axis_and_angle_of_a_simulated_tilted_specimen_are_recovered(tilted_path):
    result = estimate_ctf(tilted_path, params=_params(determine_tilt=True), workers=1)
    assert _axis_error(result.tilt_axis_degree, TILT["axis"]) <= 3.0
    assert abs(result.tilt_angle_degree - TILT["angle"]) <= 2.0
    assert abs(result.mean_defocus_angstrom - TILT["mean"]) <= 0.01 * TILT["mean"]
    assert "tilt" in result.timings_s
    plain = estimate_ctf(tilted_path, params=_params(), workers=1)
    assert plain.tilt_axis_degree is None and plain.tilt_angle_degree is None


def test_an_untilted_specimen_gives_a_small_tilt_angle(micrograph_path):
    result = estimate_ctf(micrograph_path, params=_params(determine_tilt=True), workers=1)
    assert 0.0 <= result.tilt_angle_degree <= 3.0
    assert 0.0 <= result.tilt_axis_degree < 360.0


def test_the_tilt_cannot_come_from_an_amplitude_spectrum(micrograph_path):
    image, _ = read_image(micrograph_path)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image)))[256:768, 256:768]
    with pytest.raises(InvalidParameters, match="sample tilt cannot be determined from an amplitude spectrum"):
        estimate_ctf_from_amplitude_spectrum(spectrum, params=_params(determine_tilt=True))


@pytest.mark.skipif(shutil.which("semc-ctffind") is None, reason="semc-ctffind is not installed")
def test_semc_ctffind_answers_ctffind5s_tilt_question_and_writes_its_columns(tilted_path, tmp_path):
    answers = [str(tilted_path), "t.ctf", "1.0", "300", "2.7", "0.07", "512", "30", "5", "5000", "30000", "200",
               "no", "no", "no", "no", "yes", "no", "no"]  # ... phase? no / tilt? yes / thickness? no / expert? no
    done = subprocess.run([shutil.which("semc-ctffind"), "--ctffind5"], check=False, input="\n".join(answers) + "\n",
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout
    assert "Tilt_axis, tilt angle" in done.stdout
    text = (tmp_path / "t.txt").read_text().splitlines()
    assert "#8 - Estimated tilt axis angle" in next(line for line in text if line.startswith("# Columns"))
    row = [float(v) for v in next(line for line in text if not line.startswith("#")).split()]
    assert len(row) == 10
    assert _axis_error(row[7], TILT["axis"]) <= 3.0 and abs(row[8] - TILT["angle"]) <= 2.0
    assert Path(tmp_path / "t_avrot.txt").is_file()
