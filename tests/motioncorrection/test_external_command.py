"""MotionCor2 command builder, FmIntFile and frame arithmetic: golden argv lists and production oracles."""

from __future__ import annotations

import datetime as dt
import os

import pytest
import yaml

from semc.base.errors import InvalidParameters
from semc.motioncorrection.calc.external import (
    MotionCor2Params,
    fm_dose_e_per_a2,
    fmintfile_text,
    input_flag_for,
    motioncor2_command,
    raw_frame_count,
    rendered_frame_count,
    rot_flip_gain,
    trunc_frame_count,
)
from tests.realdata import REALDATA

ORACLE = REALDATA / "appion_oracles/test_motioncorrection.yml"


@pytest.fixture(scope="module")
def oracle():
    if not ORACLE.exists():
        pytest.skip(f"production oracle {ORACLE} not present on this machine")
    return yaml.safe_load(ORACLE.read_text())


def test_golden_argv_for_a_k3_tiff_with_dose_weighting_and_references():
    params = MotionCor2Params(
        input_path="/f/m.frames.tif", output_path="/r/m_c.mrc", patches_cols=7, patches_rows=5,
        dose_per_frame_e_per_a2=1.0909, pixel_size_angstrom=0.826, voltage_kv=300.0,
        dark_path="/r/dark.mrc", gain_path="/r/norm.mrc", gpu_ids=(0, 2))
    assert motioncor2_command(params) == [
        "motioncor2", "-InTiff", "/f/m.frames.tif", "-OutMrc", "/r/m_c.mrc",
        "-Bft", "500", "100", "-Iter", "7", "-Tol", "0.500", "-Patch", "7", "5", "-Group", "1",
        "-FmDose", "1.091", "-PixSize", "0.826", "-kV", "300",
        "-Dark", "/r/dark.mrc", "-Gain", "/r/norm.mrc", "-FlipGain", "0", "-RotGain", "0", "-Gpu", "0", "2"]


def test_golden_argv_for_an_eer_movie_includes_sampling_in_ftbin_and_the_fmintfile():
    params = MotionCor2Params(
        input_path="/f/m.eer", output_path="/r/m_c.mrc", bin=1.0, eer_sampling=2, throw_frames=1,
        trunc_frames=3, fmintfile_path="/r/intfile.txt", dose_per_frame_e_per_a2=3.2, pixel_size_angstrom=0.365,
        voltage_kv=300, gain_path="/r/g.mrc", flip_gain=1, rot_gain=3, patches_cols=5, patches_rows=5)
    assert motioncor2_command(params, executable="/opt/MotionCor3") == [
        "/opt/MotionCor3", "-InEer", "/f/m.eer", "-OutMrc", "/r/m_c.mrc", "-FtBin", "2.0",
        "-Bft", "500", "100", "-Throw", "1", "-Trunc", "3", "-Iter", "7", "-Tol", "0.500", "-Patch", "5", "5",
        "-Group", "1", "-FmIntFile", "/r/intfile.txt", "-FmDose", "3.200", "-PixSize", "0.365", "-kV", "300",
        "-Gain", "/r/g.mrc", "-FlipGain", "1", "-RotGain", "3", "-Gpu", "0", "-EerSampling", "2"]


def test_no_op_flags_are_omitted_and_every_value_is_its_own_element():
    argv = motioncor2_command(MotionCor2Params(input_path="m.mrc", output_path="o.mrc", iterations=0,
                                               tolerance_px=0.0, group=0))
    assert argv == ["motioncor2", "-InMrc", "m.mrc", "-OutMrc", "o.mrc", "-Bft", "500", "100",
                    "-FlipGain", "0", "-RotGain", "0", "-Gpu", "0"]
    assert all(" " not in a for a in argv)  # D20: never "500 100" in one element
    assert "-MaskSize" not in argv and "-Throw" not in argv and "-Patch" not in argv  # D28


@pytest.mark.parametrize("kwargs", [
    {"bfactor_global": 0}, {"bin": 0.5}, {"flip_gain": 2}, {"rot_gain": 4}, {"gpu_ids": ()},
    {"dose_per_frame_e_per_a2": 1.0}, {"eer_sampling": 4}, {"patches_cols": -1},
])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(InvalidParameters):
        MotionCor2Params(input_path="m.tif", output_path="o.mrc", **kwargs)


def test_fmintfile_keeps_the_classic_quirk_of_the_full_count_on_the_second_line():
    # compat §5.5 example: EER 1539 raw frames, 100 per rendered frame
    assert fmintfile_text(n_raw_frames=1539, rendered_frame_size=100, dose_per_raw_frame_e_per_a2=0.0321) == \
        "39\t39\t0.032\n1539\t100\t0.032\n"
    assert fmintfile_text(n_raw_frames=600, rendered_frame_size=30, dose_per_raw_frame_e_per_a2=0.05) == \
        "600\t30\t0.050\n"
    assert rendered_frame_count(1539, 100) == 16 and rendered_frame_count(600, 30) == 20


def test_frame_counts_follow_the_camera_rules():
    assert raw_frame_count(nframes=50, exposure_time_ms=1500, frame_time_ms=30, camera_name="GatanK3") == 50
    assert raw_frame_count(nframes=7, exposure_time_ms=1500, frame_time_ms=30, camera_name="GatanK3") == 50
    assert raw_frame_count(nframes=None, exposure_time_ms=10, frame_time_ms=30) == 1  # never 0
    assert raw_frame_count(nframes=1539, exposure_time_ms=None, frame_time_ms=None, camera_name="Falcon4") == 1539
    with pytest.raises(InvalidParameters):
        raw_frame_count(nframes=None, exposure_time_ms=None, frame_time_ms=None)
    assert trunc_frame_count(n_total_frames=40, summed_frames=tuple(range(0, 36))) == 4
    assert trunc_frame_count(n_total_frames=40, summed_frames=tuple(range(40))) == 0


def test_eer_dose_uses_the_classic_fake_dose_when_none_is_known():
    assert fm_dose_e_per_a2(total_dose_e_per_a2=None, n_raw_frames=1539, rendered_frame_size=100,
                            is_eer=True) == pytest.approx(3.0)
    assert fm_dose_e_per_a2(total_dose_e_per_a2=None, n_raw_frames=40) is None
    assert fm_dose_e_per_a2(total_dose_e_per_a2=46.0, n_raw_frames=1539, rendered_frame_size=100,
                            is_eer=True) == pytest.approx(46.0 / 1539 * 100)


def test_gain_geometry_only_when_motioncor_does_the_flat_field():
    assert rot_flip_gain(frame_rotate=1, frame_flip=True, align=True, force_cpu_flat=False) == (1, 1)
    assert rot_flip_gain(frame_rotate=1, frame_flip=True, align=True, force_cpu_flat=True) == (0, 0)
    assert rot_flip_gain(frame_rotate=1, frame_flip=True, align=False, force_cpu_flat=False) == (0, 0)


# ---------------------------------------------------------------- production oracles (compat §7)

def test_fmdose_matches_every_production_case(oracle):
    for case in oracle["test_calcFmDose"]:
        total = case["totaldose"] if case["totaldose"] else (case["dose"] / 1e20 if case["dose"] else None)
        n_raw = raw_frame_count(nframes=case["total_raw_frames"], exposure_time_ms=case["exposure_time"],
                                frame_time_ms=case["frame_time"])
        dose = fm_dose_e_per_a2(total_dose_e_per_a2=total, n_raw_frames=n_raw,
                                rendered_frame_size=int(case["rendered_frame_size"]), is_eer=case["is_eer"])
        assert f"{dose:.3f}" == case["expected"], case


def test_input_flag_matches_every_production_case(oracle):
    for case in oracle["test_calcInputType"]:
        assert input_flag_for(case["fpath"]) == "-" + case["expected"]


def test_kv_matches_every_production_case(oracle):
    for case in oracle["test_calcKV"]:
        assert f"{int(case['high_tension'] / 1000):d}" == f"{int(case['expected']):d}"


def _pixel_size_angstrom(rows, image_timestamp: str, binning: int) -> float:
    """compat §2.1 rule, written here independently: the newest PixelSizeCalibration not after the image."""
    when = dt.datetime.fromisoformat(str(image_timestamp).replace("T", " "))
    usable = [r for r in rows if dt.datetime.fromisoformat(str(r["timestamp"]).replace("T", " ")) <= when]
    newest = max(usable, key=lambda r: dt.datetime.fromisoformat(str(r["timestamp"]).replace("T", " ")))
    return newest["pixelsize"] * binning * 1e10


def test_pixel_size_rule_used_for_the_oracles_matches_every_production_case(oracle):
    for case in oracle["test_calcPixelSize"]:
        got = _pixel_size_angstrom(case["pixelsizedatas"], case["imgdata_timestamp"], case["binning"])
        assert f"{got:.3f}" == f"{case['expected']:.3f}"


def _params_from_rows(case) -> MotionCor2Params:
    args, md, expected = case["args"], case["imgmetadata"], case["expected_kwargs"]
    cam, img = md["cameraemdata"], md["imgdata"]
    n_raw = raw_frame_count(nframes=cam["nframes"], exposure_time_ms=cam["exposure_time"],
                            frame_time_ms=cam["frame_time"], camera_name=md["ccdcamera"]["name"])
    total = float(args["totaldose"]) if args.get("totaldose") else md["presetdata"]["dose"] / 1e20
    rot, flip = rot_flip_gain(frame_rotate=cam["frame_rotate"], frame_flip=cam["frame_flip"],
                              align="align" in args, force_cpu_flat=bool(args["force_cpu_flat"]),
                              frame_aligner_flat=md["frame_aligner_flat"])
    used = tuple(int(v) for v in img["seq_use_frames"].strip("()").split(","))
    return MotionCor2Params(
        input_path=os.path.join(md["sessiondata"]["frame_path"], img["filename"] + ".frames.tif"),
        output_path=os.path.join(args["rundir"], img["filename"] + "_c.mrc"),
        bfactor_global=int(args["Bft_global"]), bfactor_local=int(args["Bft_local"]),
        iterations=int(args["Iter"]), tolerance_px=float(args["Tol"]),
        patches_cols=int(args["Patchcols"]), patches_rows=int(args["Patchrows"]), group=int(args["nrw"]),
        bin=float(args["bin"]), throw_frames=int(args["ddstartframe"]),
        trunc_frames=trunc_frame_count(n_total_frames=n_raw, summed_frames=used),
        dose_per_frame_e_per_a2=fm_dose_e_per_a2(total_dose_e_per_a2=total, n_raw_frames=n_raw),
        pixel_size_angstrom=_pixel_size_angstrom(md["pixelsizedata"], img["def_timestamp"],
                                                 cam["subd_binning_x"]),
        voltage_kv=md["scope"]["high_tension"] / 1000,
        # site temp-file names of the references (made by the pre-task): inputs, not derived
        dark_path=expected.get("Dark"), gain_path=expected.get("Gain"), defect_map_path=expected.get("DefectMap"),
        flip_gain=flip, rot_gain=rot, gpu_ids=tuple(int(g) for g in str(args["gpuids"]).split(",")),
    )


def _by_flag(argv: list[str]) -> list[tuple[str, list[str]]]:
    """[(flag, values)] with every value split on whitespace (the D20 normalisation)."""
    out: list[tuple[str, list[str]]] = []
    for token in argv[1:]:
        if token.startswith("-") and not token[1:2].isdigit():
            out.append((token, []))
        else:
            out[-1][1].extend(token.split())
    return out


#: allowed differences from the real classic commands (compat §5.1, §8), each documented:
#: -MaskSize: classic always sent "1.000 1.000"; MotionCor2 >= 1.5 and MotionCor3 have no such flag.
DROPPED_FROM_CLASSIC = {"-MaskSize"}


def test_commands_built_from_production_rows_equal_the_real_classic_commands(oracle):
    """Values are checked against the real classic flags (``expected_kwargs``: classic's ``%.3f`` strings),
    flag order against the real command lines (``test_constructMotionCorCmd``, whose float values went
    through ``str(float)`` in [S], e.g. ``1.35`` for classic's ``1.350``)."""
    commands = {c["kwargs"]["InTiff"]: c["expected"] for c in oracle["test_constructMotionCorCmd"]}
    assert len(oracle["test_constructMotionCorKwargs"]) == 25
    for case in oracle["test_constructMotionCorKwargs"]:
        ours = motioncor2_command(_params_from_rows(case))
        real_order = [f for f, _ in _by_flag(commands[case["expected_kwargs"]["InTiff"]])]
        real_values = {"-" + k: str(v).split() for k, v in case["expected_kwargs"].items()}
        assert " " not in "".join(ours[1:])  # one argv element per value (D20)
        assert [f for f, _ in _by_flag(ours)] == [f for f in real_order if f not in DROPPED_FROM_CLASSIC]
        assert dict(_by_flag(ours)) == {f: v for f, v in real_values.items() if f not in DROPPED_FROM_CLASSIC}, \
            case["expected_kwargs"]["InTiff"]
        assert ours[0] == "motioncor2"
