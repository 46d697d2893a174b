"""Session statistics for the API and the dashboard: read-only queries over SEMC's ledger and the classic tables.

Nothing here writes. Every function takes ids (never names from a URL), returns frozen dataclasses
whose :meth:`as_dict` is JSON-ready, and is safe to call from a web request.

Vocabulary (compatible with the USC CryoEM service's status JSON, and more):

- ``raw_files``: exposures of the run's raw preset (what the daemon processes), rejected ones included;
- ``processed_files``: exposures done in the run's last step (so done in every step);
- ``failed_jobs``: exposures with a failed (retrying) or quarantined step;
- ``rejected``: exposures not processed that the daemon skips (hidden or trashed in the viewer, assessed
  as rejects, or left out by the run's tilt filter);
- ``backlog``: exposures still to do (raw, minus done, minus quarantined, minus rejected);
- ``percent_done_total``: ``round(100 * processed / raw)`` as the USC service reports it (an integer);
- ``percent_current_cycle``: the share done of the work the current processing cycle has had in view,
  ``100 * done_in_cycle / (done_in_cycle + backlog)``. A cycle starts when the supervisor started the
  session's current loop (``semc supervise``), else when the run was created. 100.0 when nothing is left;
- ``throughput_per_min`` and ``latency_p50_s``/``latency_p95_s``: over the last ``window_s`` (live figures),
  end to end (the exposure row's time to the last step stored); ``latency_all_*``: over the whole run;
- ``backlog_trend_per_min``: exposures arriving minus exposures done per minute over the window
  (positive: the backlog grows);
- ``catch_up_s``: backlog / throughput (None when nothing is being done).

States (``state``): the USC service's names where they mean the same, plus ``stopping``:
``incomplete_or_empty`` (no raw exposures yet), ``needs_processing`` (work to do, no loop running),
``processing_start`` (a start/resume is requested, its loop not running yet), ``processing`` (a loop runs),
``stopping`` (a stop is requested or under way), ``processing_complete`` (no loop, nothing left to do),
``processing_failure`` (the run failed, or its loop died, or the supervisor gave up restarting it).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import Count, Max

from semc.base import ledger
from semc.models.semc import ExposureStep, ProcessingRun, StepState

__all__ = [
    "STATES",
    "FailureLine",
    "RunInfo",
    "SessionStatus",
    "SessionSummary",
    "StepStats",
    "TimelinePoint",
    "failure_list",
    "raw_preset_guess",
    "run_current",
    "session_list",
    "session_runs",
    "session_status",
    "session_summary",
    "session_timeline",
    "session_visible",
]

STATES = ("incomplete_or_empty", "needs_processing", "processing_start", "processing", "stopping",
          "processing_complete", "processing_failure")
_MAX_BINS = 2000


# --- value types -------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _AsDict:
    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 (server-local time, like Leginon's), non-finite floats as None."""
        return _jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class StepStats(_AsDict):
    """One step of a run: ledger counts by state, backlog and live figures."""

    step: str
    pending: int
    deferred: int
    running: int
    done: int
    failed: int
    quarantined: int
    backlog: int
    throughput_per_min: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_max_s: float | None
    catch_up_s: float | None


@dataclass(frozen=True, slots=True)
class RunInfo(_AsDict):
    run_id: int
    name: str
    rundir: str
    preset: str
    steps: list[str]
    status: str
    alive: bool | None  # None: the run's process is on another host (cannot tell)
    host: str
    pid: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SessionSummary(_AsDict):
    """A line of the session list."""

    session_id: int
    session_name: str
    project_id: int | None
    user: str
    comment: str
    created_at: dt.datetime | None
    state: str
    raw_files: int
    processed_files: int
    failed_jobs: int
    backlog: int
    percent_done_total: int
    last_exposure_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class SessionStatus(_AsDict):
    """Everything the session page and ``GET .../session/{session}`` show."""

    session_id: int
    session_name: str
    project_id: int | None
    user: str
    state: str
    preset: str | None
    raw_files: int
    processed_files: int
    failed_jobs: int
    quarantined: int
    in_flight: int
    rejected: int
    backlog: int
    backlog_trend_per_min: float | None
    throughput_per_min: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_all_p50_s: float | None
    latency_all_p95_s: float | None
    catch_up_s: float | None
    percent_current_cycle: float
    percent_done_total: int
    cycle_started_at: dt.datetime | None
    last_exposure_at: dt.datetime | None
    last_result_at: dt.datetime | None
    window_s: float
    run: RunInfo | None
    steps: list[StepStats] = field(default_factory=list)
    supervisor: dict[str, Any] | None = None
    pending_requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TimelinePoint(_AsDict):
    """One time bin of a run's step: arrivals, results, the backlog at the bin's end, latency of its results."""

    start: dt.datetime
    end: dt.datetime
    arrived: int
    stored: int
    failed: int
    backlog: int
    throughput_per_min: float
    latency_p50_s: float | None
    latency_p95_s: float | None


@dataclass(frozen=True, slots=True)
class FailureLine(_AsDict):
    """A failed or quarantined ledger line, as the failure ledger shows it."""

    line_id: int
    run_id: int
    exposure_id: int
    filename: str
    step: str
    state: str
    attempts: int
    error_kind: str
    last_error: str
    next_attempt_at: dt.datetime | None
    finished_at: dt.datetime | None


# --- sessions and runs ---------------------------------------------------------------------------
def session_visible(*, project_id: int, session_id: int, username: str | None) -> bool:
    """Whether the session belongs to the project and (for a user name) is the user's, shared with the
    user, or in a project the user owns. ``username=None``: any session of the project."""
    return session_id in _project_session_ids(project_id, username)


def _project_session_ids(project_id: int | None, username: str | None) -> set[int]:
    from semc import models as m

    sessions = m.SessionData.objects.exclude(hidden=True)
    if project_id is not None:
        in_project = set(m.ProjectExperiment.objects.filter(project_id=project_id)
                         .values_list("session_id", flat=True))
        sessions = sessions.filter(id__in=sorted(in_project))
    if username is None:
        return set(sessions.values_list("id", flat=True))
    user_ids = list(m.UserData.objects.filter(username=username).values_list("id", flat=True))
    if not user_ids:
        return set()
    owned = set(sessions.filter(user_id__in=user_ids).values_list("id", flat=True))
    shared = set(m.ShareExperiment.objects.filter(user_id__in=user_ids).values_list("session_id", flat=True))
    owner_of = project_id is not None and m.ProjectOwner.objects.filter(
        project_id=project_id, user_id__in=user_ids).exists()
    if owner_of:
        return set(sessions.values_list("id", flat=True))
    return owned | (shared & set(sessions.values_list("id", flat=True)))


def session_runs(session_id: int) -> list[ProcessingRun]:
    """The session's processing runs, newest first."""
    return list(ProcessingRun.objects.filter(session_id=session_id).order_by("-updated_at", "-id"))


def run_current(session_id: int) -> ProcessingRun | None:
    """The run the session's status is about: the supervised loop's run, else a running run, else the
    most recently updated one."""
    supervised = _supervised(session_id)
    if supervised is not None and supervised.rundir:
        run = ProcessingRun.objects.filter(rundir=supervised.rundir).first()
        if run is not None:
            return run
    runs = session_runs(session_id)
    running = [r for r in runs if r.status == ProcessingRun.Status.RUNNING]
    return (running or runs or [None])[0]


def raw_preset_guess(session_id: int) -> str | None:
    """The session's raw preset when no run names one: the preset with the most exposures among those
    that are not derived from another (``enn-a``, ``enn-a-DW`` come from ``enn``)."""
    from semc import models as m

    counts = dict(m.AcquisitionImageData.objects.filter(session_id=session_id, preset__isnull=False)
                  .values_list("preset__name").annotate(n=Count("id")).values_list("preset__name", "n"))
    names = [n for n in counts if n]
    raw = [n for n in names if not any(n.startswith(f"{other}-") for other in names if other != n)]
    return max(raw, key=lambda n: (counts[n], n)) if raw else None


def _supervised(session_id: int):
    from semc.web.models import SupervisedSession

    return SupervisedSession.objects.filter(session_id=session_id).first()


def _run_alive(run: ProcessingRun) -> bool | None:
    if run.status != ProcessingRun.Status.RUNNING:
        return False
    if not run.pid or run.host != socket.gethostname():
        return None
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_info(run: ProcessingRun) -> RunInfo:
    return RunInfo(run_id=run.pk, name=run.name, rundir=run.rundir, preset=run.preset, steps=list(run.steps),
                   status=run.status, alive=_run_alive(run), host=run.host, pid=run.pid,
                   created_at=run.created_at, updated_at=run.updated_at)


# --- the figures ---------------------------------------------------------------------------------
def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    """p50 and p95 as the ledger computes them (linear interpolation)."""
    from semc.base.ledger import percentile

    return percentile(values, 50), percentile(values, 95)


def _raw_query(session_id: int, preset: str | None):
    """The session's exposures of the raw preset (``manual``: without a preset; None: every exposure)."""
    from semc import models as m

    query = m.AcquisitionImageData.objects.filter(session_id=session_id)
    if preset == "manual":
        return query.filter(preset__isnull=True)
    return query.filter(preset__name=preset) if preset else query


def _rejected(run: ProcessingRun | None, ids: Iterable[int]) -> set[int]:
    from semc.base.retrieve import rejected_ids

    parameters = run.parameters if run is not None else {}
    apply_rejects = bool(parameters.get("apply_rejects", True))
    tilt_mode = str(parameters.get("tiltangle", "all") or "all")
    if not apply_rejects and tilt_mode == "all":
        return set()
    return rejected_ids(image_ids=ids, tilt_mode=tilt_mode, use_viewer=apply_rejects, use_assessment=apply_rejects)


def _step_ids(run: ProcessingRun, *, done_for: Iterable[str]) -> dict[str, dict[str, set[int]]]:
    """step -> state -> exposure ids; done lines (most of a run) only for the steps in ``done_for``."""
    result: dict[str, dict[str, set[int]]] = {}
    lines = ExposureStep.objects.filter(run=run)
    for step, state, exposure_id in lines.exclude(state=StepState.DONE).values_list("step", "state", "exposure_id"):
        result.setdefault(step, {}).setdefault(state, set()).add(exposure_id)
    for step in done_for:
        done = lines.filter(step=step, state=StepState.DONE).values_list("exposure_id", flat=True)
        result.setdefault(step, {})[StepState.DONE] = set(done)
    return result


def _step_stats(run: ProcessingRun, step: str, ids: dict[str, set[int]], todo: set[int],
                window_s: float) -> StepStats:
    """``todo``: exposures that can still be done (not rejected, not quarantined in any step)."""
    metrics = ledger.run_metrics(run, step, window_s=window_s)
    backlog = len(todo - ids.get(StepState.DONE, set()))
    rate = metrics.throughput_per_min
    return StepStats(step=step, pending=metrics.counts[StepState.PENDING], deferred=metrics.counts[StepState.DEFERRED],
                     running=metrics.counts[StepState.RUNNING], done=metrics.counts[StepState.DONE],
                     failed=metrics.counts[StepState.FAILED], quarantined=metrics.counts[StepState.QUARANTINED],
                     backlog=backlog, throughput_per_min=rate, latency_p50_s=metrics.latency_p50_s,
                     latency_p95_s=metrics.latency_p95_s, latency_max_s=metrics.latency_max_s,
                     catch_up_s=backlog / rate * 60.0 if rate > 0 else None)


def _cycle_start(run: ProcessingRun | None, supervised) -> dt.datetime | None:
    if run is None:
        return None
    if supervised is not None and supervised.started_at and supervised.rundir == run.rundir:
        return supervised.started_at
    return run.created_at


def _state(*, run: ProcessingRun | None, alive: bool | None, supervised, pending: list, raw: int,
           backlog: int) -> str:
    actions = [r.action for r in pending]
    if actions and actions[-1] == "stop":
        return "stopping"
    if supervised is not None and supervised.state == "stopping":
        return "stopping"
    if run is not None and run.status == ProcessingRun.Status.RUNNING and alive is not False:
        return "processing"
    if actions or (supervised is not None and supervised.state == "starting"):
        return "processing_start"
    if supervised is not None and supervised.state == "failed":
        return "processing_failure"
    if run is not None and (run.status == ProcessingRun.Status.FAILED or alive is False and
                            run.status == ProcessingRun.Status.RUNNING):
        return "processing_failure"
    if raw == 0:
        return "incomplete_or_empty"
    return "needs_processing" if backlog else "processing_complete"


def _pending_requests(session_id: int) -> list:
    from semc.web.models import ControlRequest

    return list(ControlRequest.objects.filter(session_id=session_id, state=ControlRequest.State.PENDING)
                .order_by("created_at", "id"))


@dataclass(frozen=True, slots=True)
class _Sets:
    """Exposure ids of a session's run, by what the daemon has made of them."""

    raw: set[int]
    rejected: set[int]  # rejected and not processed
    done: set[int]  # done in the last step
    failed: set[int]  # a step failed (retrying) or quarantined
    quarantined: set[int]
    running: set[int]

    @property
    def todo(self) -> set[int]:
        """What can still be done: raw, not rejected, not quarantined."""
        return self.raw - self.rejected - self.quarantined


def _sets(run: ProcessingRun | None, raw: set[int], by_step: dict[str, dict[str, set[int]]]) -> _Sets:
    steps = list(run.steps) if run is not None else []
    done = by_step.get(steps[-1], {}).get(StepState.DONE, set()) & raw if steps else set()

    def union(state: str) -> set[int]:
        return set().union(*(ids.get(state, set()) for ids in by_step.values())) - done

    quarantined = union(StepState.QUARANTINED)
    # only exposures not yet done can be waiting on a rejection (a processed one stays processed)
    rejected = _rejected(run, raw - done)
    return _Sets(raw=raw, rejected=rejected, done=done, failed=union(StepState.FAILED) | quarantined,
                 quarantined=quarantined, running=union(StepState.RUNNING))


def session_status(session_id: int, *, window_s: float = 600.0, detail: bool = True) -> SessionStatus:
    """The status of a session (its current run, see :func:`run_current`). ``detail=False`` skips the
    per-step figures and the whole-run latency (for lists)."""
    from semc import models as m

    session = m.SessionData.objects.select_related("user").get(pk=session_id)
    run = run_current(session_id)
    supervised = _supervised(session_id)
    preset = (run.preset or None) if run is not None else (
        (supervised.parameters.get("preset") if supervised is not None else None) or raw_preset_guess(session_id))
    raw_query = _raw_query(session_id, preset)
    by_step = _step_ids(run, done_for=run.steps if detail else run.steps[-1:]) if run is not None else {}
    sets = _sets(run, set(raw_query.values_list("id", flat=True)), by_step)
    backlog = len(sets.todo - sets.done)
    since = ledger.now() - dt.timedelta(seconds=window_s)
    steps = [_step_stats(run, s, by_step.get(s, {}), sets.todo, window_s) for s in run.steps] if (
        detail and run is not None) else []
    lines = (ExposureStep.objects.filter(run=run, step=run.steps[-1], state=StepState.DONE)
             if run is not None and run.steps else ExposureStep.objects.none())
    recent = list(lines.filter(stored_at__gte=since).values_list("arrived_at", "stored_at"))
    rate = steps[-1].throughput_per_min if steps else (
        ledger.run_metrics(run, run.steps[-1], window_s=window_s).throughput_per_min if run and run.steps else 0.0)
    p50, p95 = _percentiles([(b - a).total_seconds() for a, b in recent if a and b])
    all_p50 = all_p95 = None
    if detail:
        all_p50, all_p95 = _percentiles([(b - a).total_seconds() for a, b in
                                         lines.values_list("arrived_at", "stored_at") if a and b])
    arrived = set(raw_query.filter(timestamp__gte=since).values_list("id", flat=True)) - sets.rejected
    cycle_start = _cycle_start(run, supervised)
    done_cycle = lines.filter(stored_at__gte=cycle_start).count() if cycle_start else 0
    pending = _pending_requests(session_id)
    raw = len(sets.raw)
    return SessionStatus(
        session_id=session.pk, session_name=session.name or "", project_id=_project_of(session.pk),
        user=_username(session), state=_state(run=run, alive=_run_alive(run) if run is not None else None,
                                              supervised=supervised, pending=pending, raw=raw, backlog=backlog),
        preset=preset, raw_files=raw, processed_files=len(sets.done), failed_jobs=len(sets.failed),
        quarantined=len(sets.quarantined), in_flight=len(sets.running), rejected=len(sets.rejected),
        backlog=backlog, backlog_trend_per_min=(len(arrived) - len(recent)) / (window_s / 60.0) if run else None,
        throughput_per_min=rate, latency_p50_s=p50, latency_p95_s=p95, latency_all_p50_s=all_p50,
        latency_all_p95_s=all_p95, catch_up_s=backlog / rate * 60.0 if rate > 0 else None,
        percent_current_cycle=(100.0 * done_cycle / (done_cycle + backlog) if done_cycle + backlog
                               else (100.0 if run else 0.0)),
        percent_done_total=round(100.0 * len(sets.done) / raw) if raw else 0, cycle_started_at=cycle_start,
        last_exposure_at=raw_query.aggregate(last=Max("timestamp"))["last"],
        last_result_at=lines.aggregate(last=Max("stored_at"))["last"], window_s=window_s,
        run=_run_info(run) if run is not None else None, steps=steps, supervisor=_supervisor_dict(supervised),
        pending_requests=[{"id": r.pk, "action": r.action, "created_at": r.created_at,
                           "requested_by": r.requested_by} for r in pending])


def _supervisor_dict(supervised) -> dict[str, Any] | None:
    if supervised is None:
        return None
    return {"desired": supervised.desired, "state": supervised.state, "pid": supervised.pid,
            "host": supervised.host, "started_at": supervised.started_at, "stopped_at": supervised.stopped_at,
            "exit_code": supervised.exit_code, "failures": supervised.failures, "message": supervised.message}


def _username(session) -> str:
    return (session.user.username or "") if session.user_id and session.user else ""


def _project_of(session_id: int) -> int | None:
    from semc import models as m

    return (m.ProjectExperiment.objects.filter(session_id=session_id).order_by("id")
            .values_list("project_id", flat=True).first())


def session_summary(session_id: int, *, window_s: float = 600.0) -> SessionSummary:
    """One line of the session list (a cheaper :func:`session_status`)."""
    from semc import models as m

    status = session_status(session_id, window_s=window_s, detail=False)
    session = m.SessionData.objects.get(pk=session_id)
    return SessionSummary(
        session_id=status.session_id, session_name=status.session_name, project_id=status.project_id,
        user=status.user, comment=session.comment or "", created_at=session.timestamp, state=status.state,
        raw_files=status.raw_files, processed_files=status.processed_files, failed_jobs=status.failed_jobs,
        backlog=status.backlog, percent_done_total=status.percent_done_total,
        last_exposure_at=status.last_exposure_at)


def session_list(*, project_id: int | None = None, username: str | None = None,
                 limit: int | None = None) -> list[SessionSummary]:
    """Sessions (not hidden) of a project (or of every project), those visible to ``username`` when given
    (see :func:`session_visible`), newest first, each with its state and counts."""
    ids = sorted(_project_session_ids(project_id, username), reverse=True)
    if limit is not None:
        ids = ids[:limit]
    return [session_summary(pk) for pk in ids]


# --- time series and failures --------------------------------------------------------------------
def session_timeline(run_id: int, *, step: str | None = None, bin_s: float = 60.0,
                     since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[TimelinePoint]:
    """A run's step (default its last) binned in time: arrivals, results, failures, the backlog at the end of
    each bin, throughput and latency of the results in each bin. Rejected exposures are left out. The bin
    widens so that there are at most 2000 bins."""
    run = ProcessingRun.objects.get(pk=run_id)
    step = step or (run.steps[-1] if run.steps else None)
    rows = list(ExposureStep.objects.filter(run=run, step=step)
                .values_list("exposure_id", "arrived_at", "created_at", "stored_at", "finished_at", "state"))
    rejected = _rejected(run, [r[0] for r in rows if r[5] != StepState.DONE])  # a stored one counts anyway
    rows = [r for r in rows if r[0] not in rejected]
    arrivals = [arrived or created for _, arrived, created, _, _, _ in rows]
    if not arrivals:
        return []
    start = since or min(arrivals)
    end = until or ledger.now()
    if end <= start:
        return []
    bin_s = max(bin_s, (end - start).total_seconds() / _MAX_BINS)
    n_bins = max(1, math.ceil((end - start).total_seconds() / bin_s))

    def index(moment: dt.datetime | None) -> int | None:
        if moment is None or moment >= end:
            return None
        return max(-1, min(n_bins - 1, math.floor((moment - start).total_seconds() / bin_s)))

    arrived, stored, failed = [0] * (n_bins + 1), [0] * (n_bins + 1), [0] * (n_bins + 1)
    latencies: list[list[float]] = [[] for _ in range(n_bins + 1)]
    for (_, arrived_at, _, stored_at, finished_at, state), moment in zip(rows, arrivals):
        if (i := index(moment)) is not None:
            arrived[i] += 1  # index -1 (before the first bin) lands in the extra last slot: counted in backlog
        if state == StepState.DONE and (i := index(stored_at)) is not None:
            stored[i] += 1
            if arrived_at is not None and i >= 0:
                latencies[i].append((stored_at - arrived_at).total_seconds())
        elif state in (StepState.FAILED, StepState.QUARANTINED) and (i := index(finished_at)) is not None and i >= 0:
            failed[i] += 1
    backlog = arrived[-1] - stored[-1]  # carried in from before ``since``
    points = []
    for i in range(n_bins):
        backlog += arrived[i] - stored[i]
        p50, p95 = _percentiles(latencies[i])
        bin_start = start + dt.timedelta(seconds=i * bin_s)
        points.append(TimelinePoint(start=bin_start, end=min(end, bin_start + dt.timedelta(seconds=bin_s)),
                                    arrived=arrived[i], stored=stored[i], failed=failed[i], backlog=backlog,
                                    throughput_per_min=stored[i] / bin_s * 60.0, latency_p50_s=p50,
                                    latency_p95_s=p95))
    return points


def failure_list(run_id: int, *, limit: int = 100, include_retrying: bool = True) -> list[FailureLine]:
    """A run's quarantined (and, unless told otherwise, failed-and-retrying) lines, newest failure first."""
    states = [StepState.QUARANTINED] + ([StepState.FAILED] if include_retrying else [])
    query = ExposureStep.objects.filter(run_id=run_id, state__in=states).order_by("-finished_at", "-id")[:limit]
    return [FailureLine(line_id=line.pk, run_id=line.run_id, exposure_id=line.exposure_id, filename=line.filename,
                        step=line.step, state=line.state, attempts=line.attempts, error_kind=line.error_kind,
                        last_error=line.last_error, next_attempt_at=line.next_attempt_at,
                        finished_at=line.finished_at) for line in query]
