"""Real production command lines (compat §4.2, §7): every one parses, and for the trustworthy cases the
parameters and the MotionCor2 argv derived from them and the real Leginon rows equal the real ones."""

from __future__ import annotations

import ast
import os
import shlex

import pytest
import yaml

from semc.base.exposure import DefectPlan, ExposureInputs
from semc.classic import ctffind4, makeddalign
from semc.classic.script import RunContext
from semc.motioncorrection.calc.external import motioncor2_command, raw_frame_count
from semc.motioncorrection.task_external import _command_params
from tests.motioncorrection.test_external_command import _by_flag, _pixel_size_angstrom
from tests.realdata import REALDATA

ORACLE = REALDATA / "appion_oracles/test_motioncorrection.yml"

#: the typical web command of compat §4.2 (values filled in), and a CTF web command of compat §4.3
WEB_MOTIONCOR = (
    "--bin=2 --align --gpuids=0 --rendered_frame_size=30 --ddstartframe=0 --MaskCentrow=0 --MaskCentcol=0 "
    "--MaskSizerows=1 --MaskSizecols=1 --Patchrows=5 --Patchcols=7 --Iter=7 --FmRef=0 --doseweight "
    "--totaldose=46 --Bft_global=500 --Bft_local=100 --alignlabel=a --nrw=1 --runname=ddstack1 "
    "--rundir=/data/appion/x/ddstack/ddstack1 --preset=eer --commit --projectid=3 --session=x --no-rejects "
    "--continue --parallel --expid=7 --jobtype=makeddrawframestack --ppn=1 --nodes=1 --walltime=120 "
    "--queue=preprocessing --jobid=9 --eer_sampling=1 --bad_rows= --bad_cols= --trim=0 --no-wait "
    "--alignccbox=128 --alignoffset=2 --tiltangle=all --no-keepstack --gpuid=0 --Tol=0.5 --bin=2.0")
WEB_CTFFIND = (
    "--ampcontrast=0.07 --fieldsize=1024 --resmin=50 --resmax=4 --defstep=0.1 --numstep=25 --dast=0.05 --bestdb "
    "--runname=ctffind4run1 --rundir=/data/appion/x/ctf/ctffind4run1 --preset=enn-a-DW --commit --projectid=3 "
    "--session=x --no-rejects --continue --parallel --expid=7 --jobtype=ctfestimate --ppn=1 --nodes=1 "
    "--walltime=120 --queue=preprocessing --jobid=10")
#: allowed differences from the real classic commands, each documented (compat §5.1, §8):
#: -MaskSize: classic always sent "1.000 1.000"; MotionCor2 >= 1.5 and MotionCor3 have no such flag.
#: -Dark: these images have no dark reference; classic passed a zero dark it made itself (a no-op, D28).
DROPPED_FROM_CLASSIC = {"-MaskSize", "-Dark"}
#: site temp-file names of copied references: compared by presence, not by name
SITE_PATHS = {"-Gain", "-DefectMap", "-OutMrc"}


@pytest.fixture(scope="module")
def oracle():
    if not ORACLE.exists():
        pytest.skip(f"production oracle {ORACLE} not present on this machine")
    return yaml.safe_load(ORACLE.read_text())


def argv_from_args(args: dict) -> list[str]:
    """The command line the web sent, rebuilt from a case's recorded flags (``""`` = a bare flag;
    booleans are [S] parser defaults, not flags that were sent)."""
    return [f"--{k}" if v == "" else f"--{k}={v}" for k, v in args.items() if not isinstance(v, bool)]


def _context(args) -> RunContext:
    return RunContext(session_name=args["sessionname"], session_id=args["expid"] or 1,
                      project_id=args["projectid"], rundir=args["rundir"], runname=args["runname"])


def _inputs_from_rows(case) -> ExposureInputs:
    """What `exposure_inputs_get` reads, from the case's real rows (compat §2.1, §5.5 rules)."""
    md = case["imgmetadata"]
    cam, img, plan = md["cameraemdata"], md["imgdata"], md["correctorplandata"]
    n = raw_frame_count(nframes=cam["nframes"], exposure_time_ms=cam["exposure_time"],
                        frame_time_ms=cam["frame_time"], camera_name=md["ccdcamera"]["name"])
    dose = md["presetdata"]["dose"]
    total = dose / 1e20 if dose else None  # no preset dose: these runs gave --totaldose
    return ExposureInputs(
        exposure_id=img["def_id"], session_id=img["ref_sessiondata_session"], session_name="s",
        filename=img["filename"], preset_name=md["presetdata"]["name"],
        movie_path=os.path.join(md["sessiondata"]["frame_path"], img["filename"] + ".frames.tif"), image_path="/i",
        pixel_size_angstrom=_pixel_size_angstrom(md["pixelsizedata"], img["def_timestamp"], cam["subd_binning_x"]),
        voltage_kv=md["scope"]["high_tension"] / 1000, cs_mm=2.7, n_frames=n, total_dose_e_per_a2=total,
        dose_per_frame_e_per_a2=total / n if total else None, frame_time_ms=cam["frame_time"], camera_name=md["ccdcamera"]["name"],
        frame_rotate=cam["frame_rotate"], frame_flip=bool(cam["frame_flip"]), gain_path=md["gain_input"],
        defects=DefectPlan(bad_rows=tuple(ast.literal_eval(plan["bad_rows"] or "()")),
                           bad_cols=tuple(ast.literal_eval(plan["bad_cols"] or "()")),
                           bad_pixels=tuple(ast.literal_eval(plan["bad_pixels"] or "()"))),
        camera_dimensions=(cam["subd_dimension_x"], cam["subd_dimension_y"]))


def test_every_production_command_line_parses_with_its_values(oracle):
    parser = makeddalign.parser_build(env={})
    cases = oracle["test_constructMotionCorKwargs"]
    assert len(cases) == 25
    for case in cases:
        argv = argv_from_args(case["args"])
        args = parser.parse(argv)
        recorded = case["args"]
        assert args["sessionname"] == recorded["session"] and args["preset"] == recorded["preset"]
        assert args["jobid"] == int(recorded["jobid"]) and args["jobtype"] == "makeddrawframestack"
        assert args["norejects"] is True and args["doseweight"] is True and args["align"] is True
        assert args["bin"] == float(recorded["bin"]) and args["Patchcols"] == int(recorded["Patchcols"])
        assert args["totaldose"] == (float(recorded["totaldose"]) if "totaldose" in recorded else None)
        # the web's flags without effect in SEMC are named once, never silently dropped
        assert {"--MaskSizecols", "--FmRef", "--gpuids", "--ppn", "--queue"} <= set(args.no_effect)


def test_the_web_command_lines_of_the_compat_spec_parse():
    args = makeddalign.parser_build(env={}).parse(shlex.split(WEB_MOTIONCOR))
    assert args["bin"] == 2.0 and args["rendered_frame_size"] == 30 and args["wait"] is False
    assert args["bad_rows"] == "" and args["trim"] == 0 and args["tiltangle"] == "all"
    ctf = ctffind4.parser_build(env={}).parse(shlex.split(WEB_CTFFIND))
    assert ctf["bestdb"] is True and ctf["resmax"] == 4.0 and ctf["preset"] == "enn-a-DW"
    assert ctffind4.parser_build(ctffind4.SPEC_CTFFIND5, env={}).parse(shlex.split(WEB_CTFFIND))["dast"] == 0.05


def test_parameters_derived_from_production_lines_carry_the_classic_meaning(oracle):
    parser = makeddalign.parser_build(env={})
    for case in oracle["test_constructMotionCorKwargs"]:
        recorded = case["args"]
        args = parser.parse(argv_from_args(recorded))
        params, selection, _ = makeddalign.params_build(args, _context(args))
        mc = params.pipeline.motioncorrection
        assert params.steps == ("motioncorrection",) and params.preset == recorded["preset"]
        assert params.apply_rejects is True and params.job_id == int(recorded["jobid"]) and params.wait is True
        assert params.runname == "ddstack1" and params.rundir == recorded["rundir"] and params.commit is True
        assert mc.params.patches_xy == (int(recorded["Patchcols"]), int(recorded["Patchrows"]))
        assert (mc.params.iterations, mc.params.tolerance_px) == (int(recorded["Iter"]), float(recorded["Tol"]))
        assert (mc.params.bfactor_global_px2, mc.params.bfactor_local_px2) == (500.0, 100.0)
        assert mc.params.output_bin == float(recorded["bin"]) and mc.params.group_global == 1
        assert mc.params.throw_frames == 0 and mc.dose_weighting is True and mc.engine == "builtin"
        assert selection.everything


def test_motioncor2_argv_from_production_lines_and_rows_equals_the_real_classic_command(oracle, tmp_path):
    """Through the production path: classic flags → parameters (+ per-exposure --totaldose) → the
    external engine's builder, against the real classic flags (``expected_kwargs``) and flag order."""
    parser = makeddalign.parser_build(env={"SEMC_CLASSIC_MOTIONCOR_ENGINE": "motioncor2"})
    commands = {c["kwargs"]["InTiff"]: c["expected"] for c in oracle["test_constructMotionCorCmd"]}
    for case in oracle["test_constructMotionCorKwargs"]:
        args = parser.parse(argv_from_args(case["args"]))
        params, _, adjust = makeddalign.params_build(args, _context(args))
        inputs, config = _inputs_from_rows(case), params.pipeline
        if adjust is not None:
            inputs, config = adjust(inputs, config)
        folder = tmp_path / str(inputs.exposure_id)
        folder.mkdir()
        ours = motioncor2_command(_command_params(inputs, config.motioncorrection, folder, None))
        expected = case["expected_kwargs"]
        real_order = [f for f, _ in _by_flag(commands[expected["InTiff"]]) if f not in DROPPED_FROM_CLASSIC]
        real = {"-" + k: str(v).split() for k, v in expected.items() if "-" + k not in DROPPED_FROM_CLASSIC}
        got = dict(_by_flag(ours))
        assert [f for f, _ in _by_flag(ours)] == real_order, expected["InTiff"]
        assert {f: v for f, v in got.items() if f not in SITE_PATHS} == \
            {f: v for f, v in real.items() if f not in SITE_PATHS}, expected["InTiff"]
        assert got["-OutMrc"] == [str(folder / f"{inputs.filename}_c.mrc")]
        assert set(got) & SITE_PATHS == set(real) & SITE_PATHS
        assert " " not in "".join(ours[1:])  # one argv element per value (D20)
