"""FrameGrouping: fixed sizes and MotionCor FmIntFiles (appion-compat §5.5 examples)."""

from __future__ import annotations

import pytest

from semc.base.errors import InvalidParameters
from semc.base.io import FrameGrouping


def test_fixed_groups_drop_merge_or_keep_the_remainder():
    assert FrameGrouping.fixed(10, 3).sizes == (3, 3, 3)
    assert FrameGrouping.fixed(10, 3, remainder="merge").sizes == (3, 3, 4)
    assert FrameGrouping.fixed(10, 3, remainder="keep").sizes == (3, 3, 3, 1)
    assert FrameGrouping.fixed(40, 1).n_groups == 40
    assert FrameGrouping.fixed(10, 3).bounds() == [(0, 3), (3, 6), (6, 9)]


def test_appions_eer_fmintfile_gives_one_group_of_39_then_fifteen_of_100():
    """compat §5.5: nraw=1539, size=100 -> '39 39 0.032' / '1539 100 0.032'; MotionCor renders 16 frames."""
    grouping = FrameGrouping.from_fmintfile("39\t39\t0.032\n1539\t100\t0.032\n", 1539)
    assert grouping.sizes == (39,) + (100,) * 15
    assert grouping.n_frames_used == 1539
    assert grouping.dose_per_raw_frame_e_per_a2 == (0.032,) * 16


def test_a_two_column_fmintfile_read_from_disk_has_no_dose(tmp_path):
    path = tmp_path / "fmint.txt"
    path.write_text("1000 40\n")
    grouping = FrameGrouping.from_fmintfile(path, 1000)
    assert grouping.sizes == (40,) * 25 and grouping.dose_per_raw_frame_e_per_a2 is None


def test_block_leftovers_join_the_blocks_last_group():
    assert FrameGrouping.from_fmintfile("105 10 0.1\n", 105).sizes == (10,) * 9 + (15,)


@pytest.mark.parametrize("text", ["abc def\n", "10\n", "0 5\n", "\n\n"])
def test_malformed_fmintfiles_are_invalid_parameters(text):
    with pytest.raises(InvalidParameters):
        FrameGrouping.from_fmintfile(text + "\n", 100)


def test_groupings_are_validated():
    with pytest.raises(InvalidParameters):
        FrameGrouping(())
    with pytest.raises(InvalidParameters):
        FrameGrouping((3, 0))
    with pytest.raises(InvalidParameters):
        FrameGrouping.fixed(2, 5)
