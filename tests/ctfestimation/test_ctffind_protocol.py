"""CTFFIND 4.1's prompt sequence: branches read in order, defaults on empty answers, CTFFIND-like errors."""

import io

import pytest

from semc.ctfestimation.ctffind_protocol import PromptReader, ProtocolError, ctffind_answers_read

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
