"""The classic parser: every flag accepted, unknown flags and conflicting repeats refused by name, no-effect
flags reported once, --help complete, and the classic run name / run directory rules."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from semc.classic import ctffind4, makeddalign, options
from semc.classic.options import (
    ClassicUsageError,
    no_effect_report,
    rundir_default,
    runname_default,
)
from semc.classic.script import ScriptSpec, param_usages, run_identity, selection_from_args

SPEC = makeddalign.SPEC


def _parse(text: str):
    return makeddalign.parser_build(env={}).parse(text.split())


def test_unknown_flag_is_an_error_naming_it(capsys):
    with pytest.raises(ClassicUsageError, match="unknown flag --Patchrow5"):
        _parse("--session=s --Patchrow5=3")
    assert makeddalign.main(["--session=s", "--frobnicate=1"]) == 2
    assert "--frobnicate" in capsys.readouterr().err
    assert ctffind4.main(["--Patchrows=5"]) == 2  # a motion-correction flag is unknown to ctffind4.py
    assert "--Patchrows" in capsys.readouterr().err


def test_identical_repeats_are_accepted_and_conflicting_repeats_refused():
    args = _parse("--preset=enn --preset=enn --bin=2 --bin=2.0 --doseweight --doseweight")
    assert args["preset"] == "enn" and args["bin"] == 2.0 and args["doseweight"] is True
    with pytest.raises(ClassicUsageError, match="--preset and --preset given with different values"):
        _parse("--preset=enn --preset=esn")
    with pytest.raises(ClassicUsageError, match="--commit and --no-commit"):
        _parse("--commit --no-commit")


def test_value_forms_prefixes_and_empty_lists():
    args = _parse("-s s1 --preset enn --Patchcol=7 -R=/a/b/run1 --bad_rows= --bad_cols= --expId=4")
    assert (args["sessionname"], args["preset"], args["Patchcols"], args["rundir"]) == ("s1", "enn", 7, "/a/b/run1")
    assert args["bad_rows"] == "" and args["expid"] == 4
    with pytest.raises(ClassicUsageError, match="invalid int value"):
        _parse("--Iter=seven")
    with pytest.raises(ClassicUsageError, match="invalid choice"):
        _parse("--tiltangle=sideways")


def test_classic_defaults():
    args = _parse("")
    assert (args["bin"], args["Iter"], args["Tol"], args["Bft_global"], args["Bft_local"]) == (1.0, 7, 0.5, 500, 150)
    assert args["doseweight"] is False and args["align"] is False and args["commit"] is True
    assert args["norejects"] is False and args["wait"] is True and args["tiltangle"] == "all"
    assert args["alignlabel"] == "a" and args["engine"] == "builtin"
    assert makeddalign.parser_build(env={"SEMC_CLASSIC_MOTIONCOR_ENGINE": "motioncor3"}).parse([])["engine"] == \
        "motioncor3"
    ctf = ctffind4.parser_build(env={}).parse([])
    assert (ctf["ampcontrast"], ctf["fieldsize"], ctf["resmin"], ctf["numstep"]) == (0.07, 1024, 50.0, 25)


def test_help_lists_every_flag(capsys):
    for module, parser in ((makeddalign, makeddalign.parser_build(env={})), (ctffind4, ctffind4.parser_build())):
        assert module.main(["--help"]) == 0
        text = capsys.readouterr().out
        flags = [o for a in parser.parser._actions for o in a.option_strings]
        assert len(flags) > 60
        assert [f for f in flags if f not in text] == []
        assert "accepted, no effect in SEMC" in text


def test_no_effect_flags_are_reported_once(caplog):
    args = _parse("--MaskSizerows=1 --gpuids=0 --parallel --jobtype=makeddrawframestack")
    assert set(args.no_effect) == {"--MaskSizerows", "--gpuids", "--parallel"}
    options._reported.clear()
    with caplog.at_level(logging.WARNING, logger="semc.classic.options"):
        assert no_effect_report("x.py", args) == list(args.no_effect)
        assert no_effect_report("x.py", args) == []
    assert len(caplog.records) == 1 and "--gpuids" in caplog.records[0].getMessage()


@pytest.mark.parametrize("flag", ["--square", "--trim=2", "--eer_sampling=2", "--framepath=/x", "--stackid=3",
                                  "--override_db", "--refimgid=5", "--clip=100", "--flipgain"])
def test_flags_semc_cannot_honour_are_refused_not_ignored(flag):
    args = _parse(f"--session=s {flag}")
    context = _context("/d/appion/s/ddstack/run1")
    with pytest.raises(ClassicUsageError, match=flag.split("=")[0]):
        makeddalign.params_build(args, context)


def _context(rundir):
    from semc.classic.script import RunContext

    return RunContext(session_name="s", session_id=1, project_id=None, rundir=rundir, runname=rundir.split("/")[-1])


def test_loop_semantics_of_the_classic_flags():
    args = _parse("--session=s --no-rejects --reverse --limit=3 --tiltangle=notilt --best-images "
                  "--startimgid=10 --endimgid=20 --no-commit --jobid=7 --ddstartframe=2 --Iter=0 --Tol=0 --nrw=0")
    params, selection, adjust = makeddalign.params_build(args, _context("/d/appion/s/ddstack/run1"))
    assert params.apply_rejects is True and params.reverse is True and params.limit == 3
    assert params.wait is False  # --limit never waits (classic)
    assert params.tilt_mode == "notilt" and params.commit is False and params.job_id == 7
    assert (selection.best_only, selection.start_id, selection.end_id) == (True, 10, 20)
    mc = params.pipeline.motioncorrection.params
    assert mc.throw_frames == 2 and (mc.iterations, mc.tolerance_px, mc.group_global) == (15, 0.1, 1)
    assert adjust is None
    plain, _, _ = makeddalign.params_build(_parse("--session=s"), _context("/d/r1"))
    assert plain.apply_rejects is False and plain.wait is True  # without --no-rejects, rejects are processed
    listed = _parse("--mrclist=a_00001enn.mrc,a_00002enn")
    assert selection_from_args(listed).names == {"a_00001enn", "a_00002enn"}
    assert makeddalign.params_build(listed, _context("/d/r1"))[0].wait is False


def test_totaldose_and_ddnframe_are_applied_per_exposure():
    from semc.base.exposure import ExposureInputs

    args = _parse("--session=s --totaldose=54 --ddstartframe=2 --ddnframe=30")
    params, _, adjust = makeddalign.params_build(args, _context("/d/r1"))
    inputs = ExposureInputs(exposure_id=1, session_id=1, session_name="s", filename="f", preset_name="enn",
                            movie_path="/m", image_path="/i", pixel_size_angstrom=1.0, voltage_kv=300, cs_mm=2.7,
                            n_frames=40, dose_per_frame_e_per_a2=None, total_dose_e_per_a2=None, frame_time_ms=None,
                            camera_name="GatanK3")
    new_inputs, config = adjust(inputs, params.pipeline)
    assert new_inputs.total_dose_e_per_a2 == 54 and new_inputs.dose_per_frame_e_per_a2 == pytest.approx(1.35)
    assert config.motioncorrection.params.truncate_frames == 40 - 2 - 30
    assert params.pipeline.motioncorrection.params.truncate_frames == 0  # the run's config is untouched


def test_run_name_and_directory_rules():
    spec = ScriptSpec(prog="x.py", function="x", process_dir="ddstack", jobtype="t", steps=("motioncorrection",))
    image_path = "/data/leginon/26nov23a/rawdata"
    assert run_identity(_parse("--rundir=/a/b/run7/"), spec=spec, session_name="s", image_path=None) == \
        ("/a/b/run7", "run7")
    assert run_identity(_parse("--runname=ddstack2"), spec=spec, session_name="26nov23a", image_path=image_path) == \
        ("/data/appion/26nov23a/ddstack/ddstack2", "ddstack2")
    with pytest.raises(ClassicUsageError, match="must be the base name"):
        run_identity(_parse("--rundir=/a/run1 --runname=run2"), spec=spec, session_name="s", image_path=None)
    with pytest.raises(ClassicUsageError, match="not allowed"):
        run_identity(_parse("--runname=templates"), spec=spec, session_name="s", image_path=image_path)
    with pytest.raises(ClassicUsageError, match="give --rundir"):
        rundir_default("/somewhere/else", session="s", process_dir="ctf", runname="r")
    name = runname_default(dt.datetime(2026, 11, 23, 14, 5))
    assert name == "26nov23o05"
    _, runname = run_identity(_parse(""), spec=spec, session_name="s", image_path=image_path)
    assert len(runname) == 10 and runname[:2].isdigit()


def test_parameter_usages_are_real_command_line_spellings():
    parser = makeddalign.parser_build(env={})
    args = parser.parse(["--session=s", "--bin=2", "--no-wait", "--doseweight", "--expId=4"])
    usages = {name: usage for name, _, usage in param_usages(parser, args)}
    assert usages["bin"] == "--bin=2.0" and usages["wait"] == "--no-wait" and usages["doseweight"] == "--doseweight"
    assert usages["expid"] == "--expId=4" and usages["commit"] == "--commit" and usages["Iter"] == "--Iter=7"


def test_the_motioncor3_and_ctffind5_variants_take_the_same_flags():
    spec = makeddalign.SPEC_MOTIONCOR3
    parser = makeddalign.parser_build(env={}, spec=spec, default_engine="motioncor3")
    args = parser.parse(["--session=s", "--forceTiff", "--Patchrows=5"])
    assert args["engine"] == "motioncor3" and args.no_effect == ("--forceTiff",)
    params, _, _ = makeddalign.params_build(args, _context("/d/r1"), spec=spec)
    assert params.engines == {"motioncorrection": "motioncor3"} and params.command_line[0] == spec.prog
    with pytest.raises(ClassicUsageError, match="--gainfile"):
        makeddalign.params_build(parser.parse(["--gainfile=/g.mrc"]), _context("/d/r1"), spec=spec)
    with pytest.raises(ClassicUsageError, match="unknown flag --forceTiff"):
        _parse("--forceTiff")
    ctf5 = ctffind4.parser_build(ctffind4.SPEC_CTFFIND5, env={"SEMC_CLASSIC_CTF_ENGINE": "ctffind5"})
    assert ctf5.parse([])["engine"] == "ctffind5" and ctf5.parser.prog == "ctffind5.py"
