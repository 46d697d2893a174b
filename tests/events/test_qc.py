"""QC without a database: simulated sessions with injected faults raise the right verdict within a stated
number of exposures of the fault's onset, and a good session stays quiet."""

from __future__ import annotations

import json
import tomllib

import pytest

from semc.base.errors import InvalidParameters
from semc.events.qc import GOOD, STOP_AT_END, STOP_NOW, ExposureMetrics, QcRules, SessionMonitor
from tests.events.sessions import Fault, monitor_run, simulated_session

SEEDS = range(6)
ONSET = 40


def _first(observations, verdict, *, after=0):
    """Index of the first observation at ``verdict`` at or after ``after`` (None: never)."""
    return next((i for i, o in enumerate(observations) if i >= after and o.session.verdict == verdict), None)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_good_session_stays_good_and_keeps_almost_everything(seed):
    observations = monitor_run(SessionMonitor(), simulated_session(300, seed=seed))
    assert {o.session.verdict for o in observations} == {GOOD}
    rejected = [o for o in observations if not o.exposure.keep]
    assert len(rejected) <= 3  # 1 %: the tail of the scatter, never a run
    changes = [i for i, o in enumerate(observations) if o.changed]
    assert changes == [19]  # one message: GOOD once the baseline (20 exposures) exists


@pytest.mark.parametrize("seed", SEEDS)
def test_defocus_creeping_away_from_target_stops_at_end_within_15_exposures(seed):
    # +0.03 µm per exposure: after 15 exposures the focus is off by 0.45 µm, each exposure still kept
    session = simulated_session(120, seed=seed, faults=(Fault("defocus_creep", ONSET, rate=0.03),))
    observations = monitor_run(SessionMonitor(), session)
    assert _first(observations, STOP_AT_END) is not None
    hit = _first(observations, STOP_AT_END)
    assert ONSET <= hit <= ONSET + 15
    assert _first(observations[:hit], STOP_NOW) is None
    finding = next(f for f in observations[hit].session.findings if f.metric == "defocus_error_um")
    assert finding.rule in ("cusum", "ewma") and "defocus error" in observations[hit].session.reason
    assert all(o.exposure.keep for o in observations[ONSET:hit + 1])  # caught before the fixed 1 µm limit


@pytest.mark.parametrize("seed", SEEDS)
def test_ice_getting_thicker_stops_at_end_within_15_exposures_and_names_the_ice(seed):
    session = simulated_session(120, seed=seed, faults=(Fault("ice_thickening", ONSET, rate=1.5),))
    observations = monitor_run(SessionMonitor(), session)
    hit = _first(observations, STOP_AT_END)
    assert hit is not None and ONSET <= hit <= ONSET + 15  # resolution (worse with thicker ice) or ice itself
    assert _first(observations[:hit], STOP_NOW) is None
    named = next(i for i, o in enumerate(observations)
                 if any(f.metric == "ice_thickness_nm" for f in o.session.findings))
    assert named < ONSET + 20 and observations[named].session.verdict == STOP_AT_END
    since = next(f.since_exposure_id for f in observations[named].session.findings
                 if f.metric == "ice_thickness_nm")
    assert 1000 + ONSET - 10 <= since <= 1000 + named  # the change point is near the onset


@pytest.mark.parametrize("seed", SEEDS)
def test_a_bad_grid_square_stops_now_within_4_exposures_then_recovers(seed):
    square = Fault("bad_square", 60, length=12)
    observations = monitor_run(SessionMonitor(), simulated_session(120, seed=seed, faults=(square,)))
    assert _first(observations[:60], STOP_NOW) is None and _first(observations[:60], STOP_AT_END) is None
    hit = _first(observations, STOP_NOW)
    assert hit == 60 + 3  # the 4th rejected exposure in a row
    assert all(not o.exposure.keep for o in observations[60:72])
    assert "in a row" in observations[hit].session.reason and "1060" in observations[hit].session.reason
    assert observations[72].session.verdict == GOOD and observations[72].changed  # a good square again
    assert {o.session.verdict for o in observations[72:]} == {GOOD}


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_a_burst_of_processing_failures_stops_now(seed):
    burst = Fault("failures", 50, length=6)
    observations = monitor_run(SessionMonitor(), simulated_session(80, seed=seed, faults=(burst,)))
    hit = _first(observations, STOP_NOW)
    assert hit == 50 + 4  # 5 of the last 10 attempts failed
    assert observations[hit].exposure is None and "attempts failed" in observations[hit].session.reason


def test_a_fixed_limit_rejects_one_exposure_without_stopping():
    monitor = SessionMonitor()
    for metrics in simulated_session(20, seed=1):
        monitor.observe(metrics)
    bad = ExposureMetrics(exposure_id=5000, defocus_target_um=1.5, defocus_measured_um=1.55, resolution_A=9.5,
                          ctf_expected=True)
    observation = monitor.observe(bad)
    assert not observation.exposure.keep and observation.exposure.findings[0].rule == "limit"
    assert observation.session.verdict == GOOD
    failed_fit = monitor.observe(ExposureMetrics(exposure_id=5001, ctf_expected=True))
    assert not failed_fit.exposure.keep and failed_fit.exposure.findings[0].rule == "ctf_fit_failed"


def test_the_state_round_trips_through_json_and_continues_identically():
    session = simulated_session(90, seed=3, faults=(Fault("ice_thickening", 40, rate=1.5),))
    whole = monitor_run(SessionMonitor(), session)
    first = SessionMonitor()
    monitor_run(first, session[:50])
    resumed = SessionMonitor.from_state(json.loads(json.dumps(first.state())))
    rest = monitor_run(resumed, session[50:], first_id=1050)
    assert [o.session for o in rest] == [o.session for o in whole[50:]]
    assert [o.exposure for o in rest] == [o.exposure for o in whole[50:]]


def test_rules_come_from_a_toml_table_and_bad_keys_are_named():
    rules = QcRules.from_mapping(tomllib.loads("""
baseline_n = 8
consecutive_rejects = 3
[charts.resolution_A]
limit = 6.0
[charts.ice_thickness_nm]
enabled = false
"""), source="/etc/semc/qc.toml")
    assert rules.baseline_n == 8 and rules.chart("resolution_A").limit == 6.0
    assert rules.chart("ice_thickness_nm").enabled is False and rules.chart("drift_total_A").limit == 60.0
    assert "ice_thickness_nm" not in SessionMonitor(rules).charts
    with pytest.raises(InvalidParameters, match="qc.toml.*unknown key.*baseline"):
        QcRules.from_mapping({"baseline": 3}, source="/etc/semc/qc.toml")
    with pytest.raises(InvalidParameters, match=r"\[charts.resolution_A\] unknown key\(s\) limt"):
        QcRules.from_mapping({"charts": {"resolution_A": {"limt": 3}}}, source="qc.toml")
    with pytest.raises(InvalidParameters, match="baseline_n must be >= 3"):
        QcRules.from_mapping({"baseline_n": 1}, source="qc.toml")
