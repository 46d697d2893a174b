"""CTFFIND 4.1's prompt sequence: branches read in order, defaults on empty answers, CTFFIND-like errors."""

import io

import pytest

from semc.ctfestimation.ctffind_protocol import (
    PromptReader,
    ProtocolError,
    ctffind_answers_read,
    ctffind_old_school_read,
)

HEAD = ["diag.mrc", "1.2", "300", "2.7", "0.07", "512", "30", "5", "5000", "50000", "100"]


def _read(tmp_path, answers, *, sections=1, ctffind5=False):
    image = tmp_path / "in.mrc"
    image.write_bytes(b"x")
    stdout = io.StringIO()
    reader = PromptReader(io.StringIO("\n".join([str(image), *answers]) + "\n"), stdout)
    return ctffind_answers_read(reader, count_sections=lambda _: sections, ctffind5=ctffind5), stdout.getvalue()


def test_known_astigmatism_branch_skips_the_search_questions(tmp_path):
    answers, shown = _read(tmp_path, [*HEAD, "yes", "300", "45", "no", "no"])
    assert answers.known_astigmatism_angstrom == 300 and answers.known_astigmatism_azimuth_degree == 45
    assert "Slower, more exhaustive search?" not in shown and "Known astigmatism angle" in shown


def test_restraint_and_phase_shift_branches_take_their_values(tmp_path):
    answers, _ = _read(tmp_path, [*HEAD, "no", "yes", "yes", "150", "yes", "0.1", "2.0", "0.2", "no"])
    assert answers.exhaustive_search and answers.astigmatism_restraint_angstrom == 150
    assert (answers.min_phase_shift_radian, answers.max_phase_shift_radian, answers.phase_shift_step_radian) == (0.1, 2.0, 0.2)


def test_empty_answers_take_ctffinds_defaults(tmp_path):
    answers, _ = _read(tmp_path, [""] * 16)
    assert answers.diagnostic_path == "diagnostic_output.mrc"
    assert (answers.pixel_size_angstrom, answers.voltage_kv, answers.spherical_aberration_mm, answers.amplitude_contrast) == (1.0, 300.0, 2.7, 0.07)
    assert (answers.box_size, answers.min_resolution_angstrom, answers.max_resolution_angstrom) == (512, 30.0, 5.0)
    assert (answers.min_defocus_angstrom, answers.max_defocus_angstrom, answers.defocus_step_angstrom) == (5000.0, 50000.0, 100.0)
    assert answers.astigmatism_restraint_angstrom is None and not answers.find_phase_shift and answers.threads == 1


def test_movie_question_is_asked_only_for_stacks_and_expert_movie_questions_follow(tmp_path):
    answers, shown = _read(tmp_path, ["yes", "3", *HEAD, "no", "no", "no", "no", "yes", "no", "yes", "yes", "no", "no", "4"], sections=5)
    assert answers.input_is_movie and answers.frames_to_average == 3 and answers.threads == 4 and not answers.resample
    assert "Movie is gain-corrected?" in shown
    _, shown = _read(tmp_path, [*HEAD, "no", "no", "no", "no", "no"])
    assert "Input is a movie" not in shown


def test_ctffind5_asks_tilt_thickness_and_target_pixel(tmp_path):
    answers, shown = _read(tmp_path, [*HEAD, "no", "no", "no", "no", "no", "no", "yes", "yes", "1.1", "no", "yes", "2"], ctffind5=True)
    assert answers.target_pixel_size_angstrom == 1.1 and answers.threads == 2
    assert "Determine sample tilt?" in shown


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([*HEAD[:1], "-1"], "out of range"),
        ([*HEAD[:5], "515.5"], "not a valid integer"),
        ([*HEAD, "perhaps"], "not a valid yes/no"),
        ([*HEAD, "no", "no", "no", "yes", "1", "0.5", "0.1"], "smaller than minimum"),
        ([*HEAD, "no", "no", "no", "no", "no", "yes"], "not supported"),
        ([*HEAD[:3]], "end of input"),
    ],
)
def test_bad_or_missing_answers_raise_ctffind_like_errors(tmp_path, answers, message):
    with pytest.raises(ProtocolError, match=message):
        _read(tmp_path, answers, ctffind5=message == "not supported")


def test_ctffind5_answers_in_a_here_document_are_recognised_without_the_flag(tmp_path):
    answers, shown = _read(tmp_path, [*HEAD, *["no"] * 7, ""])
    assert "Determine samnple thickness?" in shown and answers.threads == 1
    _, shown = _read(tmp_path, [*HEAD, *["no"] * 5, ""])  # CTFFIND 4.1 answers (plus Appion's empty line)
    assert "Determine sample tilt?" not in shown


def _old_school(tmp_path, lines, *, ctffind4=False, sections=1):
    image = tmp_path / "in.mrc"
    image.write_bytes(b"x")
    text = "\n".join([str(image), "diag.ctf", *lines]) + "\n"
    return ctffind_old_school_read(io.StringIO(text), ctffind4=ctffind4, count_sections=lambda _: sections)


def test_old_school_lines_give_ctffind_3s_parameters(tmp_path):
    answers, line3 = _old_school(tmp_path, ["2.0,200.0,0.07,60000,7.0", "256,200.0,8.0,5000.0,30000.0,1000.0,100.0"])
    assert answers.pixel_size_angstrom == pytest.approx(7.0 * 10000 / 60000)  # DStep[um] * 10^4 / XMAG
    assert (answers.spherical_aberration_mm, answers.voltage_kv, answers.amplitude_contrast) == (2.0, 200.0, 0.07)
    assert (answers.box_size, answers.min_resolution_angstrom, answers.max_resolution_angstrom) == (256, 200.0, 8.0)
    assert (answers.min_defocus_angstrom, answers.max_defocus_angstrom, answers.defocus_step_angstrom) == (5000.0, 30000.0, 1000.0)
    assert answers.astigmatism_restraint_angstrom == 100.0 and line3 == (60000.0, 7.0)
    assert not (answers.input_is_movie or answers.find_phase_shift or answers.exhaustive_search) and answers.threads == 1
    assert answers.diagnostic_path == "diag.ctf" and answers.resample


def test_old_school_zero_or_negative_dast_means_no_restraint_as_ctffind_reads_relion(tmp_path):
    for dast in ("0", "0.0", "-100"):
        answers, _ = _old_school(tmp_path, ["2.7, 300, 0.1, 10000, 1.4", f"512, 30, 5, 5000, 50000, 500, {dast}"])
        assert answers.astigmatism_restraint_angstrom is None


def test_old_school_accepts_ctffind3_comments_and_a_trailing_comma(tmp_path):
    answers, _ = _old_school(tmp_path, ["2.0,200.0,0.07,60000,7.0\t\t\t!CS[mm],HT[kV],AmpCnst,XMAG,DStep[um]",
                                        "128,200.0,8.0,5000.0,30000.0,1000.0,100.0,"])
    assert answers.box_size == 128 and answers.astigmatism_restraint_angstrom == 100.0


def test_old_school_ctffind4_lines_give_movie_and_phase_options(tmp_path):
    answers, _ = _old_school(tmp_path, ["2.7, 300, 0.07, 10000, 1.0", "512, 30, 5, 5000, 50000, 500, 100", "1, 3", "1, 0.1, 2.5, 0.2"],
                             ctffind4=True, sections=12)
    assert answers.input_is_movie and answers.frames_to_average == 3
    assert answers.find_phase_shift
    assert (answers.min_phase_shift_radian, answers.max_phase_shift_radian, answers.phase_shift_step_radian) == (0.1, 2.5, 0.2)
    off, _ = _old_school(tmp_path, ["2.7, 300, 0.07, 10000, 1.0", "512, 30, 5, 5000, 50000, 500, 100", "0, 3", "0, 9, 1, 0"],
                         ctffind4=True)
    assert not off.input_is_movie and off.frames_to_average == 1 and not off.find_phase_shift  # values after a 0 flag are ignored


@pytest.mark.parametrize(
    ("lines", "ctffind4", "sections", "message"),
    [
        (["2.7, 300, 0.07, 10000"], False, 1, "Bad number of arguments (4, expected 5) in line 3 of input"),
        (["2.7, 300, 0.07, 10000, 1.0", "512, 30, 5, 5000, 50000, 500"], False, 1, "(6, expected 7) in line 4"),
        (["2.7, 300, x, 10000, 1.0", "512, 30, 5, 5000, 50000, 500, 0"], False, 1, '"x" is not a valid number (AmpCnst, line 3'),
        (["2.7, 300, 0.07, 10000, 1.0"], False, 1, "line 4 of the old-school input"),
        (["2.7, 300, 0.07, 0, 1.0", "512, 30, 5, 5000, 50000, 500, 0"], False, 1, "XMAG (0) and DStep (1) must be positive"),
        (["2.7, 300, 0.07, 10000, 1.0", "512.5, 30, 5, 5000, 50000, 500, 0"], False, 1, '"512.5" is not a valid integer'),
        (["2.7, 300, 0.07, 10000, 1.0", "512, 30, 5, 5000, 50000, 500, 0"], False, 5, "Input stacks are only supported"),
        (["2.7, 300, 0.07, 10000, 1.0", "512, 30, 5, 5000, 50000, 500, 0", "1, 9", "0, 0, 0, 0"], True, 4,
         "Input stack has 4 images, so you cannot average 9 frames together"),
        (["2.7, 300, 0.07, 10000, 1.0", "512, 30, 5, 5000, 50000, 500, 0", "0 1", "0, 0, 0, 0"], True, 1,
         "(1, expected 2) in line 5"),
        (["2.7, 300, 0.07, 10000, 1.0", "512, 30, 5, 5000, 50000, 500, 0", "0, 1", "1, 2, 1, 0.1"], True, 1,
         "Minimum phase shift (2.000000) cannot be greater than maximum phase shift (1.000000)"),
        (["2.7, 300, 0.07, 10000, 1.0", "512, 30, 5, 5000, 50000, 500, 0", "0, 1"], True, 1, "line 6 of the old-school input"),
    ],
)
def test_old_school_bad_lines_raise_ctffind_like_errors(tmp_path, lines, ctffind4, sections, message):
    with pytest.raises(ProtocolError) as caught:
        _old_school(tmp_path, lines, ctffind4=ctffind4, sections=sections)
    assert message in str(caught.value)


def test_old_school_missing_input_file_is_named(tmp_path):
    text = "missing.mrc\ndiag.ctf\n2.7, 300, 0.07, 10000, 1.0\n512, 30, 5, 5000, 50000, 500, 0\n"
    with pytest.raises(ProtocolError, match="input file missing.mrc does not exist"):
        ctffind_old_school_read(io.StringIO(text), ctffind4=False, count_sections=lambda _: 1)
