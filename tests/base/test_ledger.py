"""The ledger: one line per exposure and step, deferral without attempts, back-off, quarantine, metrics."""

from __future__ import annotations

import datetime as dt

import pytest

from semc.base import ledger
from semc.models.semc import ExposureStep, StepState

pytestmark = pytest.mark.django_db(databases="__all__")
STEP = "motioncorrection"


@pytest.fixture
def run(tmp_path):
    return ledger.run_open(name="ddstack1", rundir=str(tmp_path / "ddstack1/"), session_id=1, session_name="s",
                           project_id=1, preset="enn", steps=[STEP], engines={STEP: "builtin"},
                           parameters={"bin": 1}, command_line=["semc", "loop"])


def test_a_run_is_resumed_by_its_normalised_run_directory(run, tmp_path):
    again = ledger.run_open(name="ddstack1", rundir=str(tmp_path / "x/../ddstack1"), session_id=1, session_name="s",
                            project_id=1, preset="enn", steps=[STEP], engines={}, parameters={}, command_line=[])
    assert again.pk == run.pk and again.rundir == str(tmp_path / "ddstack1")


def test_sync_adds_each_exposure_once(run):
    assert ledger.ledger_sync(run, STEP, [(1, "a", None), (2, "b", 1.7e9)]) == 2
    assert ledger.ledger_sync(run, STEP, [(2, "b", 1.7e9), (3, "c", None)]) == 1
    assert sorted(ledger.ledger_lines(run, STEP).values_list("exposure_id", flat=True)) == [1, 2, 3]


def test_deferral_spends_no_attempt_and_failures_back_off_then_quarantine(run):
    ledger.ledger_sync(run, STEP, [(1, "a", None)])
    ledger.ledger_deferred(run, STEP, 1, reason="movie still being written", retry_in_s=5)
    line = ExposureStep.objects.get()
    assert (line.state, line.attempts) == (StepState.DEFERRED, 0)
    states = [ledger.ledger_failed(run, STEP, 1, error=RuntimeError("boom"), max_attempts=3, backoff_base_s=10)
              for _ in range(3)]
    assert states == [StepState.FAILED, StepState.FAILED, StepState.QUARANTINED]
    line.refresh_from_db()
    assert line.attempts == 3 and line.error_kind == "RuntimeError" and "boom" in line.last_error
    assert line.next_attempt_at is None


def test_done_requires_a_store_time_and_metrics_report_latency_and_throughput(run):
    ledger.ledger_sync(run, STEP, [(i, f"f{i}", None) for i in range(1, 6)])
    arrived = ledger.now() - dt.timedelta(seconds=30)
    ExposureStep.objects.filter(exposure_id__in=[1, 2, 3]).update(arrived_at=arrived)
    for pk in (1, 2, 3):
        ledger.ledger_done(run, STEP, pk, started_at=None, finished_at=None, worker_host="w1",
                           durations={"align": 1.0}, result={"drift_px": 2.0})
    metrics = ledger.run_metrics(run, STEP)
    assert metrics.counts[StepState.DONE] == 3 and metrics.backlog == 2
    assert 29 <= metrics.latency_p50_s <= 40 and metrics.latency_p95_s >= metrics.latency_p50_s
    assert metrics.throughput_per_min > 0 and metrics.catch_up_s > 0
