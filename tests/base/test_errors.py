"""Every SEMC error names step, exposure and path, and survives the trip across Dask (pickle)."""

from __future__ import annotations

import pickle

import pytest

from semc.base import errors as e

CASES = [
    e.ProcessingError("boom", step="io", exposure_id=7, path="/a/b.tif"),
    e.InputMissing("movie not found", step="motioncorrection", exposure_id=3, path="/f/m.tif"),
    e.InputNotReady("still growing", step="io", path="/f/m.tif"),
    e.CorruptInput("truncated strip", step="io", path="/f/m.tif", frame=12),
    e.ExternalProgramFailed("crashed", step="ctfestimation", exposure_id=5, program="ctffind", returncode=139,
                            argv=["ctffind"], version="4.1.14", stderr_tail="Segmentation fault", log_path="/r/x.log"),
    e.ExternalProgramTimeout("hung", program="motioncor2", signal=9, argv=["motioncor2", "-InTiff", "x"]),
    e.UnsupportedVersion("no parser", program="MotionCor2", version="9.9"),
    e.LogParseError("no shift table", program="MotionCor2", version="1.6.4", path="/r/log.txt"),
    e.InvalidParameters("bad bin", step="motioncorrection"),
    e.OutputError("cannot write the output: No such file or directory", step="motioncorrection", exposure_id=4,
                  path="/out/o.mrc"),
    e.ConfigurationError("bad port", key="database.port", source="environment SEMC_DB_PORT"),
]


@pytest.mark.parametrize("error", CASES, ids=lambda x: type(x).__name__)
def test_errors_pickle_to_an_equal_error_with_the_same_message(error):
    copy = pickle.loads(pickle.dumps(error))
    assert copy == error
    assert str(copy) == str(error)
    assert isinstance(copy, e.ProcessingError)


def test_message_names_step_exposure_path_and_frame():
    text = str(e.CorruptInput("truncated strip", step="io", exposure_id=4, path="/f/m.tif", frame=12))
    for part in ("truncated strip", "step=io", "exposure=4", "path=/f/m.tif", "frame=12"):
        assert part in text


def test_external_program_failure_carries_the_tail_of_its_output():
    text = str(CASES[4])
    assert "program=ctffind" in text and "exit=139" in text and "Segmentation fault" in text


def test_context_can_be_added_later_without_overwriting():
    err = e.InputMissing("gone", path="/x").with_context(exposure_id=9, step="motioncorrection", path="/y")
    assert (err.exposure_id, err.step, err.path) == (9, "motioncorrection", "/x")


def test_unknown_keywords_are_refused():
    with pytest.raises(TypeError):
        e.InputMissing("x", frame=3)
