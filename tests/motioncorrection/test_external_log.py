"""MotionCor version detection and version-pinned log parsers on real logs; classic trajectories and stats."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from semc.base.errors import InvalidParameters, LogParseError, UnsupportedVersion
from semc.motioncorrection.calc.external import (
    align_stats_from_positions,
    frame_trajectory_from_positions,
    motioncor_log_parse,
    motioncor_version_parse,
    motioncorr_log_positions,
    motioncorr_log_text,
    motioncorr_positions_from_shifts,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "motioncor2"
GOLDEN = sorted(DATA.glob("*/*.expected.json"))
V150 = motioncor_version_parse("MotionCor2 version 1.5.0\nBuilt on Jan 1 2022")
V164 = motioncor_version_parse("MotionCor2 version 1.6.4")


def _log_for(expected_json: Path) -> Path:
    stem = expected_json.name.removesuffix(".expected.json")
    return next(p for p in expected_json.parent.iterdir() if p.name.startswith(stem) and p.suffix in (".txt", ".log"))


@pytest.mark.parametrize("expected_json", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_logs_parse_to_the_values_read_from_their_text(expected_json):
    expected = json.loads(expected_json.read_text())
    log_path = _log_for(expected_json)
    version = motioncor_version_parse(f"{expected['program']} version {expected['version']}")
    parsed = motioncor_log_parse(log_path.read_text(), version=version, path=str(log_path))
    assert [list(s) for s in parsed.shifts_px] == expected["shifts_px"]
    assert parsed.frame_numbers == tuple(range(1, expected["n_frames"] + 1))
    assert parsed.total_time_s == expected["total_time_s"]
    assert list(parsed.output_paths) == expected["output_paths"]
    assert (parsed.program, parsed.version) == (expected["program"], expected["version"])


def test_golden_files_cover_both_motioncor2_versions():
    assert {p.parent.name for p in GOLDEN} >= {"1.5.0", "1.6.4"}


def test_the_parameter_echo_is_kept_for_auditing():
    parsed = motioncor_log_parse((DATA / "1.6.4" / "motioncor2_1.6.4_log.txt").read_text(), version=V164)
    echo = dict(parsed.parameters)
    assert echo["Patch"] == "5  5  0" and echo["Bft"] == "500.00 100.00" and echo["kV"] == "300"
    assert [k for k, _ in parsed.parameters].count("FmIntFile") == 2  # MotionCor2 echoes it twice


@pytest.mark.parametrize("text, expected", [
    ("MotionCor2 version 1.5.0\nBuilt on x", ("MotionCor2", "1.5.0", "frame-shift")),
    ("banner\nMotionCor2 version 1.6.4\n", ("MotionCor2", "1.6.4", "table")),
    ("MotionCor2 version 1.6.3", ("MotionCor2", "1.6.3", "table")),
    ("MotionCor3 version 1.2.1\nBuilt on Mar 3 2024", ("MotionCor3", "1.2.1", "frame-shift")),
    ("semc-motioncor2 (SEMC CPU engine)\nMotionCor2 version 1.6.4", ("MotionCor2", "1.6.4", "table")),
])
def test_version_detection_takes_the_last_motioncor_line(text, expected):
    v = motioncor_version_parse(text)
    assert (v.program, v.version, v.log_format) == expected


@pytest.mark.parametrize("text", ["MotionCor2 version 1.4.0", "MotionCor2 version 1.5.1", "MotionCor3 version 1.0.1",
                                  "MotionCor4 version 1.0.0"])
def test_unsupported_versions_raise_naming_program_and_version(text):
    with pytest.raises(UnsupportedVersion) as info:
        motioncor_version_parse(text)
    program, version = text.split(" version ")
    assert info.value.program == program and info.value.version == version
    assert pickle.loads(pickle.dumps(info.value)) == info.value


def test_version_output_without_a_version_line_is_a_parse_error():
    with pytest.raises(LogParseError, match="no 'MotionCor<n> version"):
        motioncor_version_parse("Segmentation fault\n")


def test_motioncor3_uses_the_frame_shift_table_of_motioncor2_1_5_0():
    # no real MotionCor3 log is available (tests/data/motioncor2/README.md): compat §5.3 says it prints
    # the 1.5.0 table, so a 1.5.0 log must parse identically under MotionCor3 1.2.1
    text = (DATA / "1.5.0" / "motioncor2_1.5.0_log.txt").read_text()
    v3 = motioncor_version_parse("MotionCor3 version 1.2.1")
    assert motioncor_log_parse(text, version=v3).shifts_px == motioncor_log_parse(text, version=V150).shifts_px


def test_a_log_of_another_version_is_not_silently_parsed():
    text = (DATA / "1.6.4" / "motioncor2_1.6.4_log.txt").read_text()
    with pytest.raises(LogParseError) as info:
        motioncor_log_parse(text, version=V150, path="/run/x.log")
    assert info.value.version == "1.5.0" and info.value.path == "/run/x.log"


def test_a_log_without_shifts_raises_naming_program_version_and_path():
    text = (DATA / "1.5.0" / "motioncor2_1.5.0_log.txt").read_text()
    crashed = text[: text.index("Full-frame alignment shift")] + "Segmentation fault (core dumped)\n"
    with pytest.raises(LogParseError) as info:
        motioncor_log_parse(crashed, version=V150, path="/run/123.log", exposure_id=123)
    e = info.value
    assert (e.program, e.version, e.path, e.exposure_id) == ("MotionCor2", "1.5.0", "/run/123.log", 123)
    assert "exposure=123" in str(e) and pickle.loads(pickle.dumps(e)) == e


def test_a_truncated_or_corrupt_shift_table_raises():
    text = (DATA / "1.6.4" / "motioncor2_1.6.4_log.txt").read_text()
    truncated = text[: text.index("    9     -2.570")]
    with pytest.raises(LogParseError, match="truncated"):
        motioncor_log_parse(truncated, version=V164)
    corrupt = text.replace("    9     -2.570     -8.510", "    9     -2.570     nan")
    with pytest.raises(LogParseError, match="finite"):
        motioncor_log_parse(corrupt, version=V164)
    skipped = text.replace("    9     -2.570     -8.510\n", "")
    with pytest.raises(LogParseError, match="frame numbers"):
        motioncor_log_parse(skipped, version=V164)


# ---------------------------------------------------------------- classic trajectory conventions

def test_positions_are_negated_recentred_on_the_middle_frame_and_divided_by_ftbin():
    shifts = [(0.0, 0.0), (-0.61, -2.32), (-1.07, -4.15), (-1.40, -5.35)]
    p = motioncorr_positions_from_shifts(shifts, ft_bin=2.0)
    mid = shifts[2]
    for (x, y), (px, py) in zip(shifts, p):
        assert px == pytest.approx(-(x - mid[0]) / 2) and py == pytest.approx(-(y - mid[1]) / 2)
    assert tuple(p[2]) == (0.0, 0.0)


def test_motioncorr_log_round_trips_all_positions():
    shifts = motioncor_log_parse((DATA / "1.5.0" / "motioncor2_1.5.0_log.txt").read_text(), version=V150).shifts_px
    p = motioncorr_positions_from_shifts(shifts)
    text = motioncorr_log_text(p, throw_frames=2)
    assert text.splitlines()[0] == "Sum Frame #000 - #016 (Reference Frame #008):"
    assert text.splitlines()[1].startswith("......Add Frame #002 with xy shift: ")
    np.testing.assert_allclose(motioncorr_log_positions(text), p, atol=5e-6)  # all 16 kept, not 14
    with pytest.raises(LogParseError):
        motioncorr_log_positions("Sum Frame #000 - #016\n")


def test_trajectory_row_lists_at_most_twenty_positions_plus_the_last():
    p = np.column_stack([np.arange(28.0), -np.arange(28.0) / 2])
    row = frame_trajectory_from_positions(p)
    assert row.pos_x == tuple(range(20)) and row.pos_y == tuple(-i / 2 for i in range(20))
    assert (row.last_x, row.last_y, row.number_of_positions, row.reference_index) == (27.0, -13.5, 28, 14)


def _naive_stats(positions, window):
    drifts = [math.dist(positions[i], positions[i + 1]) for i in range(len(positions) - 1)]
    h = (window - 1) // 2
    for i in range(h):
        drifts[i] = drifts[h]
        drifts[-1 - i] = drifts[-1 - h]
    ranked = sorted(enumerate(drifts), key=lambda t: (-t[1], t[0]))[:3]
    s = sorted(drifts)
    median = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    return [v for _, v in ranked], [i for i, _ in ranked], median


@pytest.mark.parametrize("window", [1, 3, 5])
def test_drift_statistics_match_a_plain_python_count(window):
    rng = np.random.default_rng(4)
    positions = np.cumsum(rng.normal(size=(16, 2)), axis=0)
    stats = align_stats_from_positions(positions, aligned_pixel_size_angstrom=0.826, running_window=window)
    values, indices, median = _naive_stats([tuple(p) for p in positions], window)
    assert stats.top_shift_values == pytest.approx(values) and list(stats.top_shift_indices) == indices
    assert stats.median_shift_value == pytest.approx(median) and stats.apix == 0.826


def test_drift_statistics_refuse_a_single_position():
    with pytest.raises(InvalidParameters):
        align_stats_from_positions([(0.0, 0.0)], aligned_pixel_size_angstrom=1.0)


def test_classic_records_from_the_real_1_5_0_log_follow_the_printed_shifts():
    from semc.motioncorrection.calc.external import classic_records_from_log

    expected = json.loads((DATA / "1.5.0" / "motioncor2_1.5.0_log.expected.json").read_text())["shifts_px"]
    log = motioncor_log_parse((DATA / "1.5.0" / "motioncor2_1.5.0_log.txt").read_text(), version=V150)
    records = classic_records_from_log(log, ft_bin=2.0, throw_frames=0, aligned_pixel_size_angstrom=1.46)
    mid = expected[len(expected) // 2]  # frame 9 of 16, printed as (0, 0) by MotionCor2 1.5.0
    assert mid == [0.0, 0.0]
    assert records.positions_px == pytest.approx([(-x / 2, -y / 2) for x, y in expected])
    assert records.trajectory.number_of_positions == 16 and records.trajectory.reference_index == 8
    first_drift = math.dist(records.positions_px[0], records.positions_px[1])
    assert first_drift == pytest.approx(math.hypot(2.46 - 1.67, 8.51 - 5.80) / 2)
    assert records.stats.top_shift_indices[0] == 0 and records.stats.top_shift_values[0] == pytest.approx(first_drift)
    assert records.motioncorr_log.count("......Add Frame #") == 16
