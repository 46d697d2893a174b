import pytest

from semc.base.errors import InvalidParameters
from semc.motioncorrection.motioncor2_args import FLAGS, parse_motioncor2_argv
from semc.motioncorrection.motioncor2_params import fmintfile_lines, params_from_args
from semc.motioncorrection.calc.internal.frames import integration_ranges

BASE = ["-InTiff", "m.tif", "-OutMrc", "o.mrc"]


def test_issue_flag_set_is_accepted():
    issue = ("InMrc InTiff InEer OutMrc Gain Dark DefectFile DefectMap Patch Iter Tol Bft PhaseOnly FtBin "
             "InitDose FmDose PixSize kV Throw Trunc SumRange Group FmRef RotGain FlipGain Mag Gpu UseGpus "
             "GpuMemUsage Serial OutStack SplitSum OutStar LogDir LogFile FmIntFile EerSampling TmpFile Align "
             "StackZ Crop Tilt InFmMotion Cs AmpCont ExtPhase ArcDir FullSum InAln OutAln").split()
    assert set(issue) <= set(FLAGS)


def test_defaults_are_motioncor3_code_defaults():
    a = parse_motioncor2_argv(BASE)
    assert a["Iter"] == [15] and a["Tol"] == [0.1] and a["Bft"] == [500.0, 100.0]
    assert a["Group"] == [1, 4] and a["FmRef"] == [-1] and a["GpuMemUsage"] == [0.75]
    p = params_from_args(a)
    assert (p.iterations, p.tolerance_px, p.bfactor_global_px2, p.bfactor_local_px2) == (15, 0.1, 500, 100)


def test_relion_style_command_line_parses():
    argv = BASE + ["-LogFile", "x", "-Bft", "150", "-PixSize", "0.885", "-Patch", "5", "5", "-FmRef", "0",
                   "-Kv", "200", "-FmDose", "1.277", "-InitDose", "0", "-Gpu", "0"]
    a = parse_motioncor2_argv(argv)
    p = params_from_args(a)
    assert p.voltage_kv == 200 and p.bfactor_global_px2 == 150 and p.bfactor_local_px2 == 100
    assert p.patches_xy == (5, 5) and p.reference_frame == 0 and p.dose_weighting


def test_a_multi_number_value_is_split():
    a = parse_motioncor2_argv(BASE + ["-Bft", "500 80", "-Patch", "7 5"])
    assert a["Bft"] == [500.0, 80.0] and a["Patch"][:2] == [7, 5]


@pytest.mark.parametrize("extra,needle", [
    (["-Bogus", "1"], "-Bogus"),
    (["-Iter", "abc"], "-Iter"),
    (["-Bft", "1", "2", "3"], "-Bft"),
    (["-Patch"], "-Patch"),
])
def test_unknown_or_malformed_flags_are_named(extra, needle):
    with pytest.raises(InvalidParameters, match=needle):
        parse_motioncor2_argv(BASE + extra)


def test_exactly_one_input_is_required():
    with pytest.raises(InvalidParameters, match="exactly one"):
        parse_motioncor2_argv(["-OutMrc", "o.mrc"])


def test_fmintfile_with_appion_quirk_renders_the_motioncor_frame_count():
    lines = fmintfile_lines("39\t39\t0.032\n1539\t100\t0.032\n")
    ranges, doses = integration_ranges(lines, n_raw=1539, fallback_dose_e_per_a2=0.0)
    assert len(ranges) == 16  # "Rendered stack: 4096 4096 16" in the real 1.6.4 log
    assert ranges[0] == (0, 39) and ranges[-1] == (1439, 1539)
    assert doses[1] == pytest.approx(3.2)
