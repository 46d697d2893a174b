"""CTFFIND4/5 prompt tables, output parsers and the classic ApCtfData mapping; Gctf builder and parsers."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from pathlib import Path

import pytest

from semc.base.errors import InvalidParameters, LogParseError, UnsupportedVersion
from semc.ctfestimation.calc.external import (
    CtffindParams,
    CtffindResult,
    CtffindVersion,
    apctfdata_values_from_ctffind,
    ctffind_avrot_parse,
    ctffind_prompt_table,
    ctffind_results_parse,
    ctffind_search_range,
    ctffind_version_parse,
    defoci_to_convention,
)
from semc.ctfestimation.calc.external_gctf import (
    GctfParams,
    apctfdata_values_from_gctf,
    gctf_command,
    gctf_log_parse,
    gctf_star_parse,
)

DATA = Path(__file__).resolve().parents[1] / "data"
V4 = CtffindVersion("ctffind4", "4.1.14")
V5 = CtffindVersion("ctffind5", "5.0.2")
PARAMS = CtffindParams(input_path="mic.mrc", diagnostic_path="mic-pow.mrc", pixel_size_angstrom=1.0,
                       voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.07, box_size_px=1024,
                       resolution_min_angstrom=50.0, resolution_max_angstrom=4.0, defocus_min_angstrom=5000.0,
                       defocus_max_angstrom=55000.0, defocus_step_angstrom=1000.0,
                       expected_astigmatism_angstrom=500.0)


def test_ctffind4_questions_and_answers_in_classic_order():
    table = ctffind_prompt_table(PARAMS, version=V4)
    assert [(e.label, e.answer) for e in table.entries if not e.optional] == [
        ("Input image file name", "mic.mrc"), ("Output diagnostic image file name", "mic-pow.mrc"),
        ("Pixel size", "1.0"), ("Acceleration voltage", "300.0"), ("Spherical aberration", "2.7"),
        ("Amplitude contrast", "0.07"), ("Size of amplitude spectrum to compute", "1024"),
        ("Minimum resolution", "50.0"), ("Maximum resolution", "4.0"), ("Minimum defocus", "5000.0"),
        ("Maximum defocus", "55000.0"), ("Defocus search step", "1000.0"),
        ("Do you know what astigmatism is present?", "no"), ("Slower, more exhaustive search?", "no"),
        ("Use a restraint on astigmatism?", "yes"), ("Expected (tolerated) astigmatism", "500.0"),
        ("Find additional phase shift?", "no"), ("Do you want to set expert options?", "no")]
    assert table.trailing_lines == ("",)  # classic sends one extra empty line
    assert "Output diagnostic filename" in table.entries[2].prompts  # older 4.x wording


def test_ctffind5_adds_tilt_and_the_misspelt_thickness_question_before_expert_options():
    labels = [e.label for e in ctffind_prompt_table(PARAMS, version=V5).entries]
    assert labels[-3:] == ["Determine sample tilt?", "Determine samnple thickness?",
                           "Do you want to set expert options?"]


def test_phase_shift_limits_are_sent_in_radians_and_movie_mode_asks_for_frames():
    params = CtffindParams(**{**_fields(PARAMS), "phase_shift": True, "phase_shift_min_deg": 10.0,
                              "phase_shift_max_deg": 170.0, "phase_shift_step_deg": 10.0,
                              "movie_frames_to_average": 7, "exhaustive_search": True})
    answers = {e.label: e.answer for e in ctffind_prompt_table(params, version=V4).entries}
    assert float(answers["Minimum phase shift (rad)"]) == pytest.approx(math.pi * 10 / 180)
    assert float(answers["Maximum phase shift (rad)"]) == pytest.approx(math.pi * 170 / 180)
    assert answers["Input is a movie"] == "yes" and answers["Number of frames to average together"] == "7"
    assert answers["Slower, more exhaustive search?"] == "yes"


def _fields(p):
    return {name: getattr(p, name) for name in p.__dataclass_fields__}


def test_search_range_follows_the_classic_rule():
    # bestdef 20000 A, defstep 0.1 um x 25 steps: range 25000 A -> min would be negative -> the step
    assert ctffind_search_range(start_defocus_angstrom=20000.0, defocus_step_um=0.1, n_steps=25) == \
        (1000.0, 45000.0, 1000.0)
    assert ctffind_search_range(start_defocus_angstrom=20000.0, defocus_step_um=0.05, n_steps=25) == \
        (7500.0, 32500.0, 500.0)


@pytest.mark.parametrize("kwargs", [{"pixel_size_angstrom": 0}, {"amplitude_contrast": 1.2},
                                    {"resolution_min_angstrom": 3.0}, {"box_size_px": 1023},
                                    {"defocus_min_angstrom": 60000.0}])
def test_bad_ctffind_parameters_are_refused(kwargs):
    with pytest.raises(InvalidParameters):
        CtffindParams(**{**_fields(PARAMS), **kwargs})


@pytest.mark.parametrize("text, expected", [("4.1.14\n", ("ctffind4", "4.1.14")),
                                            ("        Version : 5.0.2\n", ("ctffind5", "5.0.2")),
                                            ("CTFFIND version 4.1.10", ("ctffind4", "4.1.10"))])
def test_ctffind_versions_are_recognised(text, expected):
    v = ctffind_version_parse(text)
    assert (v.engine, v.version) == expected


def test_an_unsupported_ctffind_version_names_itself():
    with pytest.raises(UnsupportedVersion) as info:
        ctffind_version_parse("Version : 4.0.17")
    assert info.value.version == "4.0.17" and pickle.loads(pickle.dumps(info.value)) == info.value
    with pytest.raises(LogParseError):
        ctffind_version_parse("command not found")


SPECIMENS = sorted((DATA / "ctffind").glob("*/*-pow.expected.json"))


@pytest.mark.parametrize("expected_json", SPECIMENS, ids=lambda p: p.parent.name)
def test_results_files_parse_and_map_to_classic_apctfdata(expected_json):
    expected = json.loads(expected_json.read_text())
    version = ctffind_version_parse(f"Version : {expected['version']}")
    txt = expected_json.with_name(expected_json.name.replace(".expected.json", ".txt"))
    rows = ctffind_results_parse(txt.read_text(), version=version, path=str(txt))
    assert [[getattr(r, f) for f in r.__dataclass_fields__][: len(e)] for r, e in zip(rows, expected["rows"])] == \
        [[float(v) for v in e] for e in expected["rows"]]
    mapping = expected["apctfdata"]
    values = apctfdata_values_from_ctffind(rows[0], amplitude_contrast=mapping["amplitude_contrast_in"],
                                           cs_mm=mapping["cs_mm"],
                                           start_defocus_angstrom=mapping["start_defocus_angstrom"])
    for column, value in values.as_columns().items():
        assert value == pytest.approx(mapping[column], rel=1e-12, abs=1e-12), column


def test_a_results_file_with_the_wrong_column_count_names_program_version_and_path(tmp_path):
    text = (DATA / "ctffind" / "5.0.2" / "mic_00022-pow.txt").read_text()
    with pytest.raises(LogParseError, match="10 columns, ctffind4 writes 7") as info:
        ctffind_results_parse(text, version=V4, path="/run/ctf/mic-pow.txt", exposure_id=88)
    assert (info.value.program, info.value.version, info.value.path, info.value.exposure_id) == \
        ("ctffind4", "4.1.14", "/run/ctf/mic-pow.txt", 88)
    short = "# comment\n1.0 10000.0 11000.0 45.0 0.0 0.1\n"
    with pytest.raises(LogParseError, match="6 columns"):
        ctffind_results_parse(short, version=V4)
    with pytest.raises(LogParseError, match="no data row"):
        ctffind_results_parse("# only comments\n", version=V4)
    with pytest.raises(LogParseError, match="non-numeric"):
        ctffind_results_parse("1.0 10000.0 abc 45.0 0.0 0.1 5.0\n", version=V4)


def test_avrot_gives_six_curves_per_micrograph():
    (curves,) = ctffind_avrot_parse((DATA / "ctffind" / "4.1.14" / "mic_00021-pow_avrot.txt").read_text())
    assert curves.spatial_frequency_per_angstrom.tolist() == [0.0, 0.002206, 0.004413, 0.006619, 0.008826]
    assert curves.ctf_fit.tolist() == [0.1, 0.3, 0.7, 0.95, 0.99]
    assert curves.noise_cc_2sigma.tolist() == [0.25, 0.25, 0.18, 0.15, 0.12]
    with pytest.raises(LogParseError, match="6 per micrograph"):
        ctffind_avrot_parse("# x\n1 2 3\n4 5 6\n")


@pytest.mark.parametrize("d1, d2, angle, expected", [
    (1.0e-6, 2.0e-6, 30.0, (1.0e-6, 2.0e-6, 30.0)),
    (2.0e-6, 1.0e-6, 30.0, (1.0e-6, 2.0e-6, -60.0)),   # swapped: +90 -> 120 -> wrapped to -60
    (-1.0e-6, -2.0e-6, 90.0, (1.0e-6, 2.0e-6, 90.0)),  # both negative -> absolute; 90 stays (interval is (-90, 90])
    (1.0e-6, 1.5e-6, -90.0, (1.0e-6, 1.5e-6, 90.0)),
    (1.0e-6, 1.5e-6, 275.0, (1.0e-6, 1.5e-6, -85.0)),
])
def test_defocus_convention_matches_appion(d1, d2, angle, expected):
    got = defoci_to_convention(defocus1_m=d1, defocus2_m=d2, angle_deg=angle, amplitude_contrast=0.07)
    assert got[:3] == pytest.approx(expected) and got[3] == 0.07


def test_convention_invariants_hold_for_every_input():
    import itertools
    for d1, d2, a in itertools.product([0.5e-6, 1e-6, 3e-6], [0.7e-6, 2e-6], range(-270, 271, 15)):
        r = apctfdata_values_from_ctffind(CtffindResult(1, d1 * 1e10, d2 * 1e10, float(a), 0.0, 0.1, 5.0),
                                          amplitude_contrast=0.1, cs_mm=2.7, start_defocus_angstrom=1e4)
        assert abs(r.defocus1) <= abs(r.defocus2) and -90 < r.angle_astigmatism <= 90
        # the angle is the axis of the stored defocus1 (the smaller one): CTFFIND's azimuth a is the axis
        # of its col2, a + 90 that of its col3 (bug #4047 convention), modulo 180
        small_axis = float(a) if d1 < d2 else float(a) + 90
        if d1 != d2:
            assert min((r.angle_astigmatism - small_axis) % 180, 180 - (r.angle_astigmatism - small_axis) % 180) \
                == pytest.approx(0, abs=1e-9)


# ---------------------------------------------------------------- Gctf

def test_gctf_golden_argv():
    params = GctfParams(input_path="mic.mrc", pixel_size_angstrom=1.06, voltage_kv=300, cs_mm=2.7,
                        amplitude_contrast=0.07, phase_shift=True, do_epa=True)
    assert gctf_command(params, executable="/opt/Gctf") == [
        "/opt/Gctf", "--apix", "1.0600", "--kv", "300.0", "--cs", "2.70", "--ac", "0.070", "--boxsize", "1024",
        "--resL", "50.00", "--resH", "4.00", "--defL", "5000.0", "--defH", "50000.0", "--defS", "500.0",
        "--astm", "1000.0", "--do_EPA", "1", "--phase_shift_L", "0.0", "--phase_shift_H", "180.0",
        "--phase_shift_S", "10.0", "--phase_shift_T", "1", "--gid", "0", "mic.mrc"]


def test_gctf_log_maps_u_to_defocus2_and_v_to_defocus1():
    result = gctf_log_parse((DATA / "gctf" / "1.06" / "mic_gctf.log").read_text())
    assert (result.defocus_u_angstrom, result.defocus_v_angstrom, result.angle_deg, result.cross_correlation) == \
        (23456.12, 22345.67, 45.23, 0.123456)
    assert result.resolution_angstrom == 3.613 and result.phase_shift_deg == 0.0
    v = apctfdata_values_from_gctf(result, amplitude_contrast=0.07, cs_mm=2.7, start_defocus_angstrom=20000.0)
    assert (v.defocus1, v.defocus2) == pytest.approx((22345.67e-10, 23456.12e-10))
    assert v.angle_astigmatism == pytest.approx(45.23 + 90 - 180) and v.ctffind4_resolution == 3.613


def test_gctf_log_with_phase_shift_has_seven_tokens_and_degrees_become_radians():
    text = "   Defocus_U   Defocus_V       Angle   Phase_shift       CCC\n" \
           "    20000.00    21000.00       10.00       90.00    0.2  Final Values\n"
    result = gctf_log_parse(text)
    assert result.phase_shift_deg == 90.0 and result.cross_correlation == 0.2
    v = apctfdata_values_from_gctf(result, amplitude_contrast=0.07, cs_mm=2.7, start_defocus_angstrom=2e4)
    assert v.extra_phase_shift == pytest.approx(math.pi / 2)
    assert v.ctffind4_resolution == 100000.0  # no Resolution line


def test_gctf_outputs_that_do_not_parse_raise():
    with pytest.raises(LogParseError, match="Defocus_U"):
        gctf_log_parse("CUDA error: out of memory\n", path="/run/x_gctf.log")
    with pytest.raises(LogParseError, match="tokens"):
        gctf_log_parse("Defocus_U Defocus_V Angle CCC\n1 2 3\n")


def test_gctf_star_rows_are_read_by_label():
    star = ("\ndata_\n\nloop_\n_rlnMicrographName #1\n_rlnDefocusU #2\n_rlnDefocusV #3\n_rlnDefocusAngle #4\n"
            "mic.mrc 23456.12 22345.67 45.23\n\n")
    assert gctf_star_parse(star) == [{"MicrographName": "mic.mrc", "DefocusU": "23456.12",
                                      "DefocusV": "22345.67", "DefocusAngle": "45.23"}]
    with pytest.raises(LogParseError):
        gctf_star_parse("data_\nloop_\n_rlnA #1\n_rlnB #2\n1 2 3\n")


# ---------------------------------------------------------------- the prompt table driving a CTFFIND-style dialog

FAKE = DATA / "ctffind" / "fake_ctffind.py"


@pytest.mark.parametrize("version, flags, specimen", [
    (V4, [], DATA / "ctffind" / "4.1.14" / "mic_00021-pow.txt"),
    (V5, ["--five"], DATA / "ctffind" / "5.0.2" / "mic_00022-pow.txt"),
])
def test_the_table_answers_a_ctffind_dialog_and_the_outputs_parse(tmp_path, version, flags, specimen):
    import sys

    from semc.base.external import run_interactive

    table = ctffind_prompt_table(PARAMS, version=version)
    done = run_interactive([sys.executable, str(FAKE), *flags, "--results", str(specimen)], answers=table,
                           cwd=tmp_path, timeout_s=60, log_path=tmp_path / "mic.ctffind.log", prompt_timeout_s=10,
                           program=version.engine, version=version.version)
    assert "Summary of results" in done.stdout
    sent = (tmp_path / "mic-pow.answers").read_text().splitlines()
    assert sent == [e.answer for e in table.entries if e.label != "Input is a movie"]
    assert len(ctffind_results_parse((tmp_path / "mic-pow.txt").read_text(), version=version)) == 1


def test_a_ctffind4_table_against_a_ctffind5_dialog_fails_on_the_tilt_question(tmp_path):
    import sys

    from semc.base.external import run_interactive

    with pytest.raises(LogParseError, match="Determine sample tilt"):
        run_interactive([sys.executable, str(FAKE), "--five", "--results", "x"], cwd=tmp_path, timeout_s=60,
                        answers=ctffind_prompt_table(PARAMS, version=V4), log_path=tmp_path / "x.log",
                        prompt_timeout_s=2, program="ctffind4", version="4.1.14")


def test_answers_from_the_run_search_parameters_skip_the_restraint_when_there_is_none():
    from semc.ctfestimation.calc.external import ctffind_params_from_search
    from semc.ctfestimation.types import CtfSearchParameters

    search = CtfSearchParameters(pixel_size_angstrom=1.1, box_size=256, defocus_step_angstrom=100.0)
    params = ctffind_params_from_search(search, input_path="m.mrc", diagnostic_path="m-pow.mrc")
    table = ctffind_prompt_table(params, version=CtffindVersion("ctffind4", "4.1.14"))
    asked = {e.label: e.answer for e in table.entries}
    assert asked["Use a restraint on astigmatism?"] == "no" and "Expected (tolerated) astigmatism" not in asked
    assert (asked["Pixel size"], asked["Size of amplitude spectrum to compute"], asked["Defocus search step"]) == (
        "1.1", "256", "100.0")
    restrained = ctffind_params_from_search(dataclasses.replace(search, astigmatism_restraint_angstrom=300.0),
                                            input_path="m.mrc", diagnostic_path="m-pow.mrc")
    asked = {e.label: e.answer for e in ctffind_prompt_table(restrained, version=CtffindVersion("ctffind4", "4.1.14"))
             .entries}
    assert asked["Use a restraint on astigmatism?"] == "yes" and asked["Expected (tolerated) astigmatism"] == "300.0"
    for change in ({"known_astigmatism_angstrom": 100.0, "known_astigmatism_azimuth_degree": 10.0},
                   {"resample": False}, {"target_pixel_size_angstrom": 2.0}):
        with pytest.raises(InvalidParameters, match="external CTFFIND"):
            ctffind_params_from_search(dataclasses.replace(search, **change), input_path="m.mrc",
                                       diagnostic_path="m-pow.mrc")
