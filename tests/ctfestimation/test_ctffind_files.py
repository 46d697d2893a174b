"""CTFFIND's output files: names from the diagnostic name, header words RELION reads, seven columns, six avrot lines."""

import math

import mrcfile
import numpy as np
import pytest

from semc.ctfestimation.ctffind_files import ctffind_files_write, ctffind_output_paths
from semc.ctfestimation.types import CtfDiagnostics, CtfResult, CtfSearchParameters


def _result(resolution=4.5):
    n = 10
    curves = {name: np.linspace(0, 1, n) for name in ("spatial_frequency_per_angstrom", "rotational_average", "equiphase_average",
                                                      "ctf_fit", "fit_correlation", "noise_correlation_2sigma")}
    diagnostics = CtfDiagnostics(**curves, diagnostic_image=np.zeros((64, 64), np.float32))
    return CtfResult(defocus_1_angstrom=12000.5, defocus_2_angstrom=11500.25, astigmatism_azimuth_degree=-45.5,
                     phase_shift_radian=0.25, cross_correlation=0.1234, fit_resolution_angstrom=resolution,
                     spectrum_pixel_size_angstrom=1.4, diagnostics=diagnostics)


def test_output_names_follow_the_diagnostic_file_name(tmp_path):
    assert [p.name for p in ctffind_output_paths(tmp_path / "a-pow.mrc")] == ["a-pow.mrc", "a-pow.txt", "a-pow_avrot.txt"]
    assert [p.name for p in ctffind_output_paths("out/mic1.ctf")] == ["mic1.ctf", "mic1.txt", "mic1_avrot.txt"]


def test_results_file_has_relions_header_words_and_seven_columns(tmp_path):
    params = CtfSearchParameters(pixel_size_angstrom=0.885, voltage_kv=200, spherical_aberration_mm=1.4, amplitude_contrast=0.1)
    _, text, avrot = ctffind_files_write([_result()], diagnostic_path=tmp_path / "d.mrc", params=params, input_name="in.mrc")
    lines = text.read_text().splitlines()
    words = next(line for line in lines if "acceleration voltage:" in line).split()
    assert len(words) >= 19 and float(words[8]) == 200.0 and float(words[13]) == 1.4 and float(words[18]) == 0.1
    columns = lines.index(next(line for line in lines if line.startswith("# Columns:")))
    row = [float(v) for v in lines[columns + 1].split()]
    assert row == pytest.approx([1, 12000.5, 11500.25, -45.5, 0.25, 0.1234, 4.5])
    data = [line for line in avrot.read_text().splitlines() if not line.startswith("#")]
    assert len(data) == 6 and all(len(line.split()) == 10 for line in data)
    with mrcfile.open(tmp_path / "d.mrc") as mrc:
        assert mrc.voxel_size.x == pytest.approx(1.4)


def test_no_fit_resolution_is_written_as_inf(tmp_path):
    params = CtfSearchParameters(pixel_size_angstrom=1.0)
    _, text, _ = ctffind_files_write([_result(math.inf)], diagnostic_path=tmp_path / "d.mrc", params=params, input_name="x")
    assert text.read_text().splitlines()[-1].split()[-1] == "inf"
