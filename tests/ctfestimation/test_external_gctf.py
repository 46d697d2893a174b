"""Gctf's ``micrographs_all_gctf.star`` values, ``_EPA.log`` profiles and the options built from a run's
search parameters (pure parsers: golden texts in, values or a typed error out)."""

from __future__ import annotations

import math

import pytest

from semc.base.errors import LogParseError, UnsupportedVersion
from semc.ctfestimation.calc.external_gctf import (
    GctfResult,
    gctf_command,
    gctf_epa_parse,
    gctf_params_from_search,
    gctf_star_values,
    gctf_version_parse,
)
from semc.ctfestimation.types import CtfSearchParameters

LABELS = ("MicrographName", "CtfImage", "DefocusU", "DefocusV", "DefocusAngle", "Voltage", "SphericalAberration",
          "AmplitudeContrast", "Magnification", "DetectorPixelSize", "CtfFigureOfMerit", "FinalResolution")
HEADER = "\ndata_\n\nloop_\n" + "".join(f"_rln{label} #{i + 1}\n" for i, label in enumerate(LABELS))
ROW = "Micrographs/mic_0001.mrc Micrographs/mic_0001.ctf:mrc 23456.12 22345.67 45.23 300 2.7 0.07 10000 1.06 0.1234 3.613"


def test_star_values_are_read_by_label_for_the_micrograph():
    other = ROW.replace("mic_0001", "mic_0002").replace("23456.12", "11111.00")
    result = gctf_star_values(HEADER + other + "\n" + ROW + "\n\n", micrograph="mic_0001.mrc")
    assert result == GctfResult(23456.12, 22345.67, 45.23, 0.1234, 0.0, 3.613)


@pytest.mark.parametrize(("text", "message"), [
    (HEADER + "\n", "no loop_ with data rows"),
    (HEADER + ROW.replace("mic_0001", "mic_0009") + "\n", "no row for mic_0001.mrc"),
    (HEADER.replace("_rlnDefocusU", "_rlnDefocusX") + ROW + "\n", "no DefocusU"),
    (HEADER + ROW.replace("23456.12", "nan") + "\n", "DefocusU is not finite"),
    (HEADER + ROW.replace("45.23", "abc") + "\n", "DefocusAngle is not a number"),
])
def test_a_star_without_values_names_program_version_exposure_and_path(text, message):
    with pytest.raises(LogParseError, match=message) as info:
        gctf_star_values(text, micrograph="mic_0001.mrc", path="/run/.failed/x/micrographs_all_gctf.star",
                         version="1.06", exposure_id=12)
    e = info.value
    assert (e.program, e.version, e.exposure_id, e.path) == ("gctf", "1.06", 12, "/run/.failed/x/micrographs_all_gctf.star")


def test_epa_profiles_are_over_spatial_frequency():
    text = ("  Resolution     |CTFsim|  EPA( Ln|F| )  EPA(Ln|F| - Bg)  CCC\n"
            "  20.000000  0.100000  -1.500000  0.200000  0.900000\n"
            "  10.000000  0.800000  -2.000000  0.300000  0.700000\n")
    epa = gctf_epa_parse(text)
    assert list(epa["spatial_frequency_per_angstrom"]) == pytest.approx([0.05, 0.1])
    assert list(epa["ctf_fit"]) == [0.1, 0.8] and list(epa["cross_correlation"]) == [0.9, 0.7]


@pytest.mark.parametrize("text", ["Resolution |CTFsim|\n", "Resolution\n 10.0 0.1 0.2\n", "x\n 0.0 1 2 3 4\n",
                                  "x\n 10.0 1 2 three 4\n"])
def test_a_bad_epa_log_is_a_parse_error(text):
    with pytest.raises(LogParseError):
        gctf_epa_parse(text, version="1.06", exposure_id=3)


def test_options_from_the_run_search_turn_epa_on_and_restrain_astigmatism_by_default():
    params = CtfSearchParameters(pixel_size_angstrom=0.83, box_size=512, min_resolution_angstrom=30.0,
                                 max_resolution_angstrom=4.0, min_defocus_angstrom=5000.0,
                                 max_defocus_angstrom=40000.0, defocus_step_angstrom=100.0,
                                 find_phase_shift=True, min_phase_shift_radian=0.0,
                                 max_phase_shift_radian=math.pi, phase_shift_step_radian=math.pi / 18)
    argv = gctf_command(gctf_params_from_search(params, input_path="mic.mrc"), executable="/opt/Gctf")
    assert argv == ["/opt/Gctf", "--apix", "0.8300", "--kv", "300.0", "--cs", "2.70", "--ac", "0.070",
                    "--boxsize", "512", "--resL", "30.00", "--resH", "4.00", "--defL", "5000.0", "--defH", "40000.0",
                    "--defS", "100.0", "--astm", "1000.0", "--do_EPA", "1", "--phase_shift_L", "0.0",
                    "--phase_shift_H", "180.0", "--phase_shift_S", "10.0", "--phase_shift_T", "1", "--gid", "0",
                    "mic.mrc"]


@pytest.mark.parametrize("text", ["Gctf Version: v1.20", "Version 2.1"])
def test_gctf_versions_without_a_parser_are_refused(text):
    with pytest.raises(UnsupportedVersion):
        gctf_version_parse(text)
    with pytest.raises(LogParseError):
        gctf_version_parse("Usage: something else")
