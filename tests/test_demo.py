"""`semc demo`: a live simulated session processed end to end on the embedded defaults (SQLite, local
cluster), whose summary is checked against the rows in the SQLite files and the simulator's ground truth;
and the pure comparison functions behind the summary."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semc.demo.accuracy import (
    DEFOCUS_ERROR_TARGET,
    DRIFT_RMS_TARGET_PX,
    ExposureRecord,
    drift_path_px,
    drift_rms_error_px,
    session_report,
    trajectory_grouped,
)
from semc.demo.display import Progress, progress_line

ROOT = Path(__file__).resolve().parents[1]
SESSION = "demo4"
N = 4


def _semc(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semc", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _env(tmp: Path) -> dict[str, str]:
    # SEMC_DB_BACKEND=mysql etc. from a MariaDB test pass must not matter: the demo runs on SQLite
    return {**os.environ, "HOME": str(tmp)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    home = tmp / "home"
    proc = _semc(["demo", "--exposures", str(N), "--interval", "0.5", "--workers", "1", "--home", str(home),
                  "--session", SESSION], _env(tmp))
    summary_path = home / "demo" / SESSION / "summary.json"
    assert summary_path.is_file(), proc.stdout + proc.stderr
    return proc, json.loads(summary_path.read_text()), home


def _rows(db: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def _stored(home: Path) -> dict[str, dict]:
    """Per raw exposure, straight from the SQLite files: trajectory, CTF row and the CTF ledger line."""
    raw = _rows(home / "leginondb.sqlite3",
                'SELECT i."DEF_id", i.filename, s."frame path" FROM AcquisitionImageData i '
                'JOIN SessionData s ON s."DEF_id" = i."REF|SessionData|session" '
                'JOIN PresetData p ON p."DEF_id" = i."REF|PresetData|preset" WHERE s.name = ? AND p.name = ?',
                SESSION, "enn")
    out = {}
    for image_id, filename, frame_path in raw:
        (pos_x, pos_y, aligned), = _rows(
            home / "ap1.sqlite3",
            'SELECT t."SEQ|pos_x", t."SEQ|pos_y", t."REF|leginondata|AcquisitionImageData|image" '
            'FROM ApDDFrameTrajectoryData t JOIN ApDDAlignImagePairData p '
            'ON p."REF|leginondata|AcquisitionImageData|result" = t."REF|leginondata|AcquisitionImageData|image" '
            'WHERE p."REF|leginondata|AcquisitionImageData|source" = ?', image_id)
        (d1, d2, resolution), = _rows(home / "ap1.sqlite3", 'SELECT defocus1, defocus2, ctffind4_resolution '
                                      'FROM ApCtfData WHERE "REF|leginondata|AcquisitionImageData|image" = ?',
                                      aligned)
        (state, arrived, stored), = _rows(home / "semc.sqlite3", "SELECT state, arrived_at, stored_at FROM "
                                          "semc_exposurestep WHERE exposure_id = ? AND step = 'ctfestimation'",
                                          image_id)
        truth = json.loads((Path(frame_path) / f"{filename}.truth.json").read_text())
        out[filename] = {"xy": np.column_stack([json.loads(pos_x), json.loads(pos_y)]), "defocus_m": (d1, d2),
                             "resolution": resolution, "state": state,
                             "latency": (dt.datetime.fromisoformat(stored) - dt.datetime.fromisoformat(arrived))
                             .total_seconds(), "truth": truth}
    return out


def _path(xy: np.ndarray) -> float:
    return float(np.hypot(*np.diff(xy, axis=0).T).sum())


@pytest.mark.slow
def test_demo_stores_every_exposure_and_prints_its_summary_and_next_steps(demo):
    proc, summary, home = demo
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = summary["report"]
    assert (report["planned"], report["stored"], report["failed"], summary["problems"]) == (N, N, 0, [])
    assert [e["state"] for e in report["exposures"]] == ["done"] * N
    assert f"Summary of session {SESSION}" in proc.stdout and f"Stored      {N} of {N}, 0 failed" in proc.stdout
    assert "stored" in proc.stdout and "backlog" in proc.stdout  # the progress lines
    assert f"export SEMC_HOME={home}" in proc.stdout and "semc web" in proc.stdout
    assert "createsuperuser" in proc.stdout
    assert (home / "semc.toml").is_file() and (home / "demo" / SESSION / "daemon.log").stat().st_size > 0
    assert (home / "runs" / SESSION / "run1" / "corrected_micrographs.star").is_file()


@pytest.mark.slow
def test_summary_numbers_are_the_stored_rows_against_the_ground_truth(demo):
    _, summary, home = demo
    stored = _stored(home)
    exposures = {e["filename"]: e for e in summary["report"]["exposures"]}
    assert set(exposures) == set(stored) and len(stored) == N
    for name, row in stored.items():
        line, truth = exposures[name], row["truth"]
        true_xy = np.column_stack([truth["trajectory"]["shift_x_px"], truth["trajectory"]["shift_y_px"]])
        assert line["drift_found_px"] == pytest.approx(_path(row["xy"]), abs=1e-9)
        assert line["drift_true_px"] == pytest.approx(_path(true_xy), abs=1e-9)
        residual = (row["xy"] - row["xy"].mean(axis=0)) - (true_xy - true_xy.mean(axis=0))
        assert line["drift_rms_error_px"] == pytest.approx(math.sqrt((residual**2).sum(axis=1).mean()), abs=1e-9)
        found = sum(row["defocus_m"]) / 2 * 1e6
        true = (truth["ctf"]["defocus1_angstrom"] + truth["ctf"]["defocus2_angstrom"]) / 2 / 1e4
        assert (line["defocus_found_um"], line["defocus_true_um"]) == pytest.approx((found, true), rel=1e-12)
        assert line["defocus_error_percent"] == pytest.approx(100 * (found - true) / true, rel=1e-9)
        assert line["fit_resolution_angstrom"] == pytest.approx(row["resolution"])
        assert row["state"] == "done" and line["latency_s"] == pytest.approx(row["latency"], abs=1e-3)
    latencies = sorted(row["latency"] for row in stored.values())
    report = summary["report"]
    assert report["latency_max_s"] == pytest.approx(latencies[-1], abs=1e-3)
    assert report["latency_p50_s"] == pytest.approx(float(np.median(latencies)), abs=1e-3)
    assert 0 < report["throughput_per_min"] <= 60 * N / min(latencies)


@pytest.mark.slow
def test_demo_results_are_within_the_engines_accuracy(demo):
    report = demo[1]["report"]
    # issue 6: median |mean-defocus error| <= 0.5 % on simulated micrographs
    assert report["defocus_error_median_percent"] <= 100 * DEFOCUS_ERROR_TARGET
    assert report["defocus_within_target"] is True
    # motion: stored trajectories follow the simulated ones, in the right frame and with the right sign (a sign
    # or frame-convention error gives errors of the order of the 3-4 px path)
    for line in report["exposures"]:
        assert line["drift_rms_error_px"] < 0.25 and line["drift_found_px"] == pytest.approx(
            line["drift_true_px"], rel=0.25)


@pytest.mark.slow
def test_demo_drift_meets_the_motion_correction_target(demo):
    assert demo[1]["report"]["drift_rms_error_median_px"] <= DRIFT_RMS_TARGET_PX


def test_bad_options_are_refused_before_anything_is_written(tmp_path):
    home = tmp_path / "home"
    proc = _semc(["demo", "--exposures", "0", "--home", str(home)], _env(tmp_path), timeout=120)
    assert proc.returncode == 1 and "need >= 1 exposure" in proc.stderr and "step=demo" in proc.stderr
    assert not home.exists()
    proc = _semc(["demo", "--camera", "nikon"], _env(tmp_path), timeout=120)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_a_home_configured_for_a_facility_database_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "semc.toml").write_text('mode = "attached"\n')
    proc = _semc(["demo", "--exposures", "1", "--home", str(home)], _env(tmp_path), timeout=120)
    assert proc.returncode == 1 and "the demo runs standalone on SQLite" in proc.stderr
    assert str(home / "semc.toml") in proc.stderr
    assert sorted(p.name for p in home.iterdir()) == ["semc.toml"]


# --- the comparison with the ground truth (pure) -------------------------------------------------------


def test_drift_error_ignores_the_reference_frame_and_measures_the_residual():
    rng = np.random.default_rng(0)
    truth = np.cumsum(rng.normal(size=(12, 2)), axis=0)
    assert drift_rms_error_px(truth - truth[6], truth) == pytest.approx(0.0, abs=1e-12)
    noise = np.tile([[0.03, -0.04], [-0.03, 0.04]], (6, 1))  # zero-mean, |noise| = 0.05 on every frame
    assert drift_rms_error_px(truth + noise + 7.0, truth) == pytest.approx(0.05)
    assert drift_path_px(np.array([[0, 0], [3, 4], [3, 0]])) == pytest.approx(9.0)


def test_detector_frames_are_averaged_into_the_rendered_fractions():
    frames = np.arange(40, dtype=float).reshape(20, 2)
    grouped = trajectory_grouped(frames, 5)
    assert grouped.shape == (5, 2) and grouped[0].tolist() == [3.0, 4.0]
    assert trajectory_grouped(frames, 20) is frames and trajectory_grouped(frames, 7) is None


def _record(i: int, *, state="done", found=(15000.0, 14000.0), arrived=100.0, stored=None) -> ExposureRecord:
    xy = tuple((0.1 * k, -0.1 * k) for k in range(10))
    return ExposureRecord(exposure_id=i, filename=f"s_{i:05d}enn", state=state, truth_shifts_px=xy,
                          truth_defocus_angstrom=(15100.0, 14100.0), stored_shifts_px=xy if state == "done" else None,
                          stored_defocus_angstrom=found if state == "done" else None, arrived_at_s=arrived + i,
                          stored_at_s=None if state != "done" else (stored or arrived + i + 2 * i + 1), worker_s=1.5)


def test_session_report_counts_failures_and_summarises_only_the_stored():
    records = [_record(0), _record(1), _record(2), _record(3, state="quarantined")]
    report = session_report(session="s", planned=5, records=records, wall_s=30.0)
    assert (report.planned, report.stored, report.failed) == (5, 3, 1)
    assert report.defocus_error_median_percent == pytest.approx(100 * 100 / 14600)
    assert report.defocus_within_target is False and report.drift_within_target is True
    assert [e.latency_s for e in report.exposures[:3]] == [1.0, 3.0, 5.0]
    assert (report.latency_p50_s, report.latency_max_s) == (3.0, 5.0)
    assert report.throughput_per_min == pytest.approx(60 * 3 / (107.0 - 100.0))
    assert report.arrival_per_min == pytest.approx(60 * 3 / 3.0)
    assert report.exposures[3].defocus_found_um is None and report.exposures[3].drift_rms_error_px is None


def test_progress_line_shows_stored_arrived_and_the_rest():
    p = Progress(planned=10, arrived=6, stored=3, failed=1, backlog=3, throughput_per_min=12.0, latency_p50_s=2.0,
                 latency_p95_s=None, elapsed_s=75, phase="live")
    line = progress_line(p, width=10, unicode=False)
    assert line.startswith("[###+++....]") and "3/10 stored" in line and "arrived   6" in line
    assert "backlog  3" in line and "failed 1" in line and "12.0/min" in line and "p95 –" in line
    assert line.endswith("1:15  live")
    first = progress_line(Progress(planned=4, arrived=1, stored=1, failed=0, backlog=0, throughput_per_min=None,
                                   latency_p50_s=3.0, latency_p95_s=3.0, elapsed_s=9, phase="live"), width=4)
    assert first.startswith("[█···]") and "    –/min" in first and "failed" not in first


# --- the benchmark suite's record keeping (benchmarks/run.py, figures_of.py, sizes.py) ---------------


@pytest.fixture
def suite(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import figures_of
    import run
    import sizes

    return run, figures_of, sizes


def test_a_suite_block_replaces_only_its_own_size_and_keeps_the_notes(suite, tmp_path):
    run, _, _ = suite
    path = tmp_path / "topic.md"
    path.write_text("# Topic\n\nnotes written by hand\n")
    run.block_replace(path, "ci", "first ci figures", title="Topic")
    run.block_replace(path, "realistic", "realistic figures", title="Topic")
    run.block_replace(path, "ci", "second ci figures", title="Topic")
    text = path.read_text()
    assert text.startswith("# Topic\n\nnotes written by hand\n") and "first ci" not in text
    assert text.count("<!-- suite:ci:begin -->") == 1 and "second ci figures" in text
    assert run.block_read(path, "realistic").strip() == "realistic figures"
    run.block_replace(tmp_path / "new.md", "ci", "x", title="New topic")
    assert (tmp_path / "new.md").read_text().startswith("# New topic\n")


def test_benchmark_tables_are_read_back_into_key_figures(suite):
    _, figures_of, _ = suite
    output = ("machine: vm\n\n| movie | frames (y x n) | ours, s (median) | RELION, s (median) | ratio |\n"
              "|---|---|---|---|---|\n| k3 | 4092x5760x40 | 45.4 | 119.2 | 0.38 |\n| 1k | 1024x1024x40 | 2.4 | 1.6 |"
              " 1.53 |\n\ntext | with a bar\n")
    tables = figures_of.tables_parse(output)
    assert len(tables) == 1 and tables[0][1]["RELION, s (median)"] == "1.6"
    assert figures_of.KEY_FIGURES["motioncorrection"](tables, {}) == (
        "k3: 45.4 s vs RELION 119.2 s (ratio 0.38); 1k: 2.4 s vs RELION 1.6 s (ratio 1.53)")
    assert figures_of.number("1,234.5 ms") == 1234.5 and figures_of.number("–") is None
    assert figures_of.KEY_FIGURES["ctf"](tables, {}) == ""  # another script's table gives no figure


def test_a_size_fills_only_the_options_left_unset(suite):
    _, _, sizes = suite
    import argparse

    parser = argparse.ArgumentParser()
    sizes.size_argument(parser)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--frames", type=int, default=None)
    defaults = {"ci": {"repeats": 3, "frames": 10}, "realistic": {"repeats": 3, "frames": 40}}
    args = sizes.size_apply(parser.parse_args(["--size", "ci", "--repeats", "7"]), defaults)
    assert (args.repeats, args.frames) == (7, 10)
    assert sizes.size_apply(parser.parse_args([]), defaults).frames == 40
