"""Aligned image names, presets and geometry follow classic Appion (compat §2.3 oracles)."""

from __future__ import annotations

import pytest

from semc.base.errors import InvalidParameters
from semc.motioncorrection.calc.appion import (
    AxisGeometry,
    aligned_axis_geometry,
    aligned_filename,
    aligned_preset_name,
    use_frames_for_aligned,
)


def test_aligned_preset_names():
    assert aligned_preset_name("enn") == "enn-a"
    assert aligned_preset_name("enn", dose_weighted=True) == "enn-a-DW"
    assert aligned_preset_name("eer", label="b") == "eer-b"
    assert aligned_preset_name(None) == "ma--a"


def test_the_last_occurrence_of_the_preset_name_is_replaced():
    raw = "m25mar17a_00004gr_00012sq_v01_00022enn"
    assert aligned_filename(raw, "enn", "enn-a") == raw + "-a"
    assert aligned_filename(raw, "enn", "enn-a-DW") == raw + "-a-DW"
    assert aligned_filename("enn_session_00003enn", "enn", "enn-a") == "enn_session_00003enn-a"
    assert aligned_filename("plain_name", None, "ma--a") == "plain_name-ma--a"


def test_k3_geometry_at_bin_1_is_unchanged():
    # oracle (compat §2.3): 5760x4092 at camera binning 2, --bin 1 -> unchanged
    for dim in (5760, 4092):
        assert aligned_axis_geometry(AxisGeometry(dim, 2, 0)) == AxisGeometry(dim, 2, 0)


def test_extra_binning_halves_the_dimension_and_keeps_the_camera_centred():
    out = aligned_axis_geometry(AxisGeometry(5760, 2, 0), extra_bin=2)
    assert out == AxisGeometry(2880, 4, 0)
    offset = aligned_axis_geometry(AxisGeometry(3000, 1, 500), extra_bin=2)  # 4000-px camera
    assert offset == AxisGeometry(1500, 2, 250)
    assert (2 * offset.offset + offset.dimension) * offset.binning == 4000


def test_trim_and_square():
    assert aligned_axis_geometry(AxisGeometry(4096, 1, 0), trim=8) == AxisGeometry(4080, 1, 8)
    square = aligned_axis_geometry(AxisGeometry(5760, 2, 0), square_dimension=4092)
    assert square == AxisGeometry(4092, 2, 834)


def test_bad_geometry_parameters_are_refused():
    with pytest.raises(InvalidParameters):
        aligned_axis_geometry(AxisGeometry(10, 1, 0), trim=6)
    with pytest.raises(InvalidParameters):
        aligned_preset_name("enn", label="")


def test_use_frames_is_null_when_every_saved_frame_was_summed():
    assert use_frames_for_aligned(tuple(range(40)), 40) is None
    assert use_frames_for_aligned(tuple(range(2, 40)), 40) == tuple(range(2, 40))


def test_positions_are_negated_recentred_on_the_middle_frame_and_divided_by_ftbin():
    from semc.motioncorrection.calc.appion import motioncorr_positions

    shifts = ((0.0, 0.0), (1.0, -2.0), (3.0, -4.0), (4.0, -5.0))
    # middle = index 2 = (3, -4): x' = -(x-3)/2, y' = -(y+4)/2
    assert motioncorr_positions(shifts, output_bin=2) == ((1.5, -2.0), (1.0, -1.0), (0.0, 0.0), (-0.5, 0.5))


def test_motioncorr_log_has_the_classic_header_and_one_line_per_frame():
    from semc.motioncorrection.calc.appion import motioncorr_log_text

    text = motioncorr_log_text(((0.5, -0.25), (0.0, 0.0), (-0.5, 0.25)), throw=2)
    assert text.splitlines() == [
        "Sum Frame #000 - #003 (Reference Frame #001):",
        "......Add Frame #002 with xy shift: 0.50000 -0.25000",
        "......Add Frame #003 with xy shift: 0.00000 0.00000",
        "......Add Frame #004 with xy shift: -0.50000 0.25000",
    ]

