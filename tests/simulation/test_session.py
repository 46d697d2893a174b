"""Sessions: arrival schedules, Leginon layout, files at their arrival times, the rows hook."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest

from semc.base.errors import InvalidParameters
from semc.simulation.session import SessionSpec, arrival_schedule, session_plan, session_run


def test_cadence_bursts_and_pauses_give_the_expected_arrival_times():
    assert arrival_schedule(3, interval_s=0) == [0, 0, 0]
    assert arrival_schedule(4, interval_s=5) == [0, 5, 10, 15]
    assert arrival_schedule(6, interval_s=10, burst_size=3, burst_spacing_s=1) == [0, 1, 2, 10, 11, 12]
    assert arrival_schedule(5, interval_s=4, pause_every=2, pause_s=60) == [0, 4, 68, 72, 136]


def test_jitter_keeps_arrivals_increasing_within_bounds():
    t = np.diff(arrival_schedule(50, interval_s=4, jitter_fraction=0.25, rng=np.random.default_rng(1)))
    assert np.all(t >= 3.0 - 1e-9) and np.all(t <= 5.0 + 1e-9) and t.std() > 0


def test_plan_uses_the_leginon_layout(tmp_path):
    plan = session_plan(SessionSpec(name="26nov23a", root=tmp_path, n_exposures=3, camera="k3"))
    e = plan.exposures[1]
    assert plan.image_path == tmp_path / "leginon" / "26nov23a" / "rawdata"
    assert plan.frame_path == tmp_path / "frames" / "26nov23a" / "rawdata"
    assert e.filename == "26nov23a_00002enn" and e.movie_path.name == "26nov23a_00002enn.frames.tif"
    assert e.image_path == plan.image_path / "26nov23a_00002enn.mrc"
    assert e.movie.shape == (4092, 5760) and e.movie.n_frames == 40
    assert e.movie.n_frames * e.movie.dose_per_frame_e_per_a2 == pytest.approx(40.0)
    assert 8000 <= 0.5 * (e.movie.optics.defocus1_angstrom + e.movie.optics.defocus2_angstrom) <= 25000
    assert not tmp_path.joinpath("leginon").exists()  # planning writes nothing


def test_replayed_schedule_must_cover_every_exposure(tmp_path):
    with pytest.raises(InvalidParameters):
        SessionSpec(name="s", root=tmp_path, n_exposures=3, schedule_s=(0.0, 1.0))


def test_run_writes_each_exposure_at_its_arrival_time_then_calls_the_rows_writer(tmp_path):
    spec = SessionSpec(name="s1", root=tmp_path, n_exposures=3, camera="small", interval_s=5.0, n_particles=5)
    plan = session_plan(spec)
    now = [0.0]
    sleeps, calls = [], []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    def rows(plan_, exp, files, *, acquired_at):
        assert files.movie.exists() and files.truth.exists() and exp.image_path.exists()
        calls.append((exp.filename, now[0]))

    written = session_run(plan, realtime=True, rows_writer=rows, clock=lambda: now[0], sleep=sleep)
    assert [c[1] for c in calls] == [0.0, 5.0, 10.0]
    assert len(written) == 3 and all(f.gain == plan.gain_path for f in written)
    truths = [json.loads(f.truth.read_text()) for f in written]
    assert truths[0]["detector"] == truths[2]["detector"]  # one camera for the session
    with mrcfile.open(plan.gain_path) as g:
        assert g.data.shape == plan.camera.shape
    assert truths[0]["trajectory"]["shift_x_px"] != truths[1]["trajectory"]["shift_x_px"]
