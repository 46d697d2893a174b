"""SEMC's own bookkeeping (controller only): runs, the per-exposure ledger, and run metrics.

The ledger is how the daemon never loses or duplicates a result: every exposure of a
run has one line per step; a line becomes ``done`` in the same transaction that writes
the classic "done" marker; a deferred line waits without spending an attempt (R5); a
failed one retries after an exponential back-off and is quarantined after too many
attempts.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count

from semc.base.calc import retry_delay_s
from semc.base.store import path_normalise
from semc.models.semc import ExposureStep, ProcessingRun, StepState

__all__ = ["run_open", "run_close", "ledger_sync", "ledger_lines", "ledger_submitted", "ledger_started",
           "ledger_deferred", "ledger_failed", "ledger_done", "run_metrics", "RunMetrics", "now", "percentile", "done_results"]


def now() -> dt.datetime:
    """Naive local time (USE_TZ is False, like Leginon's timestamps)."""
    return dt.datetime.now()


def run_open(*, name: str, rundir: str, session_id: int, session_name: str, project_id: int | None, preset: str,
             steps: list[str], engines: dict[str, str], parameters: dict[str, Any], command_line: list[str],
             engine_versions: dict[str, str] | None = None, appion_job_id: int | None = None) -> ProcessingRun:
    """The run of a run directory, created or resumed, marked running by this process.

    ``engine_versions`` is completed for every step of ``engines`` it lacks (each engine resolved
    once here: an external program's executable and detected version, or ``<name> (semc)``).
    """
    rundir = path_normalise(rundir)
    missing = {step: name for step, name in engines.items() if step not in (engine_versions or {})}
    if missing:
        from semc.base.engines import engine_versions as versions_detect

        engine_versions = {**(engine_versions or {}), **versions_detect(missing)}
    values = dict(name=name, session_id=session_id, session_name=session_name, project_id=project_id,
                  preset=preset or "", steps=steps, engines=engines, engine_versions=engine_versions or {},
                  parameters=parameters, command_line=command_line, host=socket.gethostname(), pid=os.getpid(),
                  slurm_job_id=os.environ.get("SLURM_JOB_ID", ""), status=ProcessingRun.Status.RUNNING,
                  appion_job_id=appion_job_id)
    run, _ = ProcessingRun.objects.update_or_create(rundir=rundir, defaults=values)
    return run


def run_close(run: ProcessingRun, *, failed: bool = False) -> None:
    status = ProcessingRun.Status.FAILED if failed else ProcessingRun.Status.STOPPED
    ProcessingRun.objects.filter(pk=run.pk).update(status=status, updated_at=now())


def ledger_sync(run: ProcessingRun, step: str, exposures: Iterable[tuple[int, str, float | None]]) -> int:
    """Add pending lines for exposures the ledger does not know yet; returns how many were added."""
    lines = [ExposureStep(run=run, exposure_id=pk, filename=filename, step=step,
                          arrived_at=dt.datetime.fromtimestamp(arrived) if arrived else None)
             for pk, filename, arrived in exposures]
    before = ExposureStep.objects.filter(run=run, step=step).count()
    ExposureStep.objects.bulk_create(lines, ignore_conflicts=True, batch_size=500)
    return ExposureStep.objects.filter(run=run, step=step).count() - before


def ledger_lines(run: ProcessingRun, step: str, exposure_ids: Iterable[int] | None = None):
    query = ExposureStep.objects.filter(run=run, step=step)
    if exposure_ids is not None:
        query = query.filter(exposure_id__in=list(exposure_ids))
    return query


def _update(run: ProcessingRun, step: str, exposure_id: int, **values) -> None:
    values["updated_at"] = now()
    ExposureStep.objects.filter(run=run, step=step, exposure_id=exposure_id).update(**values)


def ledger_submitted(run: ProcessingRun, step: str, exposure_id: int, *, lease_owner: str,
                     lease_seconds: float) -> None:
    """The exposure's attempt was submitted: it holds the lease until it is stored or expires."""
    current = now()
    _update(run, step, exposure_id, state=StepState.RUNNING, submitted_at=current, lease_owner=lease_owner,
            lease_expires_at=current + dt.timedelta(seconds=lease_seconds))


def ledger_started(run: ProcessingRun, step: str, exposure_id: int, *, started_at: dt.datetime,
                   worker_host: str) -> None:
    _update(run, step, exposure_id, started_at=started_at, worker_host=worker_host)


def ledger_deferred(run: ProcessingRun, step: str, exposure_id: int, *, reason: str, retry_in_s: float) -> None:
    """Input not ready (missing or still being written): wait, without spending an attempt (R5)."""
    _update(run, step, exposure_id, state=StepState.DEFERRED, last_error=reason, error_kind="InputNotReady",
            next_attempt_at=now() + dt.timedelta(seconds=retry_in_s), lease_owner="", lease_expires_at=None)


def ledger_failed(run: ProcessingRun, step: str, exposure_id: int, *, error: BaseException | str,
                  max_attempts: int, backoff_base_s: float = 10.0, backoff_cap_s: float = 600.0) -> str:
    """Record a real failure: back off exponentially, quarantine after ``max_attempts``. Returns the new state."""
    with transaction.atomic(using=ExposureStep.objects.db):
        line = ExposureStep.objects.select_for_update().get(run=run, step=step, exposure_id=exposure_id)
        attempts = line.attempts + 1
        state = StepState.QUARANTINED if attempts >= max_attempts else StepState.FAILED
        retry = None if state == StepState.QUARANTINED else now() + dt.timedelta(
            seconds=retry_delay_s(attempts, base_s=backoff_base_s, cap_s=backoff_cap_s))
        _update(run, step, exposure_id, state=state, attempts=attempts, last_error=str(error)[-4000:],
                error_kind=type(error).__name__ if isinstance(error, BaseException) else "Error",
                next_attempt_at=retry, finished_at=now(), lease_owner="", lease_expires_at=None)
    return state


def ledger_done(run: ProcessingRun, step: str, exposure_id: int, *, started_at: dt.datetime | None,
                finished_at: dt.datetime | None, worker_host: str, durations: dict[str, float],
                result: dict[str, Any]) -> None:
    """Mark done, right after the classic finishing row is committed. The classic row is authoritative:
    a controller that dies in between finds the exposure done in the Appion tables on restart and the
    ledger is reconciled from them."""
    _update(run, step, exposure_id, state=StepState.DONE, stored_at=now(), started_at=started_at,
            finished_at=finished_at, worker_host=worker_host, durations=durations, result=result,
            last_error="", error_kind="", lease_owner="", lease_expires_at=None, next_attempt_at=None)


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """Per run and step: counts by state, throughput (exposures/min over the window), latency (s)."""

    counts: dict[str, int]
    backlog: int
    throughput_per_min: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_max_s: float | None
    catch_up_s: float | None


def done_results(run: ProcessingRun, step: str, *, having: str | None = None) -> list[dict[str, Any]]:
    """The stored result summaries of a run's done exposures in one step, by exposure id (those with the
    key ``having`` only, when given)."""
    results = ledger_lines(run, step).filter(state=StepState.DONE).order_by("exposure_id").values_list(
        "result", flat=True)
    return [r for r in results if having is None or r.get(having)]


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (integer q) with linear interpolation (numpy's default); None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_metrics(run: ProcessingRun, step: str, *, window_s: float = 600.0) -> RunMetrics:
    """Counts, backlog, throughput over the last ``window_s``, latency percentiles and time to catch up."""
    query = ExposureStep.objects.filter(run=run, step=step)
    counts = {state: 0 for state in StepState.values}
    counts.update(dict(query.values_list("state").annotate(n=Count("id")).values_list("state", "n")))
    backlog = counts[StepState.PENDING] + counts[StepState.DEFERRED] + counts[StepState.RUNNING] + counts[
        StepState.FAILED]
    since = now() - dt.timedelta(seconds=window_s)
    recent = list(query.filter(state=StepState.DONE, stored_at__gte=since).values_list("arrived_at", "stored_at"))
    first = min((stored for _, stored in recent), default=None)
    span_s = max((now() - first).total_seconds(), 1.0) if first else None
    throughput = len(recent) / span_s * 60.0 if span_s else 0.0
    latencies = sorted((stored - arrived).total_seconds() for arrived, stored in recent if arrived and stored)
    catch_up = backlog / throughput * 60.0 if throughput > 0 else None
    return RunMetrics(counts=counts, backlog=backlog, throughput_per_min=throughput,
                      latency_p50_s=percentile(latencies, 50), latency_p95_s=percentile(latencies, 95),
                      latency_max_s=latencies[-1] if latencies else None, catch_up_s=catch_up)
