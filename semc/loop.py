"""The controller daemon: retrieve → plan → submit → as completed → store, streaming, exactly once.

One process per run directory (a lock), the only one that talks to the database.
Exposures stream through a Dask cluster with a cap on work in flight (R4), newest
first while the session is live; an exposure whose movie is not there yet is
deferred without spending an attempt (R5); real failures back off and are
quarantined after too many attempts; each result is stored in one transaction per
database with the classic "done" row written last, then released at once so the
cluster can scale down (R3). SIGTERM/SIGINT stop submission and let work in flight
finish within a grace period; a second signal stops at once; SIGCONT is ignored (R13).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from distributed import Future, wait

from semc.base import ledger
from semc.base.calc import plan_batch
from semc.base.errors import InputMissing, InputNotReady, InvalidParameters, ProcessingError
from semc.base.retrieve import exposure_ids_list, exposure_inputs_get, rejected_ids, session_get
from semc.models.databases import appion_alias_for_project
from semc.models.routers import current_appion_alias
from semc.models.semc import StepState
from semc.pipeline import STEPS, PipelineConfig, PipelineOutcome, exposure_pipeline

__all__ = ["LoopParams", "Controller", "STEP_STORES", "SignalPolicy", "loop_run"]

logger = logging.getLogger(__name__)

#: step -> module with run_prepare(controller) -> state, done_ids(state) -> set, outcome_save(state, inputs, outcome)
STEP_STORES = {"motioncorrection": "semc.motioncorrection.store", "ctfestimation": "semc.ctfestimation.store"}
_DEFER = (InputNotReady,)


@dataclass(frozen=True, slots=True)
class LoopParams:
    """How the controller runs (everything about *what* a step computes is in the pipeline config)."""

    session: str
    preset: str | None
    steps: tuple[str, ...]
    rundir: str
    runname: str
    pipeline: PipelineConfig
    engines: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    command_line: tuple[str, ...] = ()
    wait: bool = True
    poll_interval_s: float = 1.0
    reconcile_interval_s: float = 60.0
    max_in_flight: int | None = None
    max_attempts: int = 3
    backoff_base_s: float = 10.0
    defer_retry_s: float = 3.0
    grace_s: float = 120.0
    view_interval_s: float = 10.0
    live_window_s: float = 300.0
    idle_exit_s: float | None = None
    reverse: bool = False
    limit: int | None = None
    tilt_mode: str = "all"
    apply_rejects: bool = True
    project_id: int | None = None
    job_id: int | None = None
    jobtype: str = "makeddrawframestack"
    commit: bool = True  # False: a dry run (semc.classic.dryrun): files in the run dir only, no rows

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if not self.steps or unknown:
            raise InvalidParameters(f"steps must be among {', '.join(STEPS)}, got {list(self.steps)}")
        if list(self.steps) != [s for s in STEPS if s in self.steps]:
            raise InvalidParameters("motion correction must come before CTF estimation")
        if self.max_attempts < 1:
            raise InvalidParameters("max_attempts must be >= 1")


@dataclass
class _InFlight:
    key: str
    future: Future
    submitted: float


class Controller:
    """The daemon's state and its loop. Build with the params and an open cluster handle, then ``run()``."""

    def __init__(self, params: LoopParams, cluster, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.params = params
        self.cluster = cluster
        self.clock = clock
        self.stop_requested = 0
        self.in_flight: dict[int, _InFlight] = {}
        self.submissions: dict[int, int] = {}
        self.known: dict[int, float | None] = {}
        self.last_id = 0
        self.last_new_at = clock()
        self.last_reconcile = -1e9
        self.done: dict[str, set[int]] = {step: set() for step in params.steps}
        self.rejected: set[int] = set()
        self.stored = 0
        self.newest_next = True
        self.views_at = -1e9
        self.views_dirty = False

    # --- set-up ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        from semc.base.store import appion_job_start

        self.session = session_get(self.params.session)
        self.project_id = self.params.project_id or _project_of_session(self.session.pk)
        from semc.base.engines import engine_versions

        self.engine_versions = engine_versions(self.params.engines)  # a missing program stops the run here
        self.run = ledger.run_open(
            name=self.params.runname, rundir=self.params.rundir, session_id=self.session.pk,
            session_name=self.session.name, project_id=self.project_id, preset=self.params.preset or "",
            steps=list(self.params.steps), engines=self.params.engines, parameters=self.params.parameters,
            command_line=list(self.params.command_line), appion_job_id=self.params.job_id,
            engine_versions=self.engine_versions)
        if self.project_id is not None:  # this process's Appion models use the project's database
            current_appion_alias.set(appion_alias_for_project(self.project_id))
        self.stores = {step: importlib.import_module(STEP_STORES[step]) for step in self.params.steps}
        self.states = {step: self.stores[step].run_prepare(self) for step in self.params.steps}
        self.job = appion_job_start(job_id=self.params.job_id, rundir=self.run.rundir, runname=self.params.runname,
                                    jobtype=self.params.jobtype, session_id=self.session.pk,
                                    user=_user(), cluster=socket.gethostname())
        from semc.events.hooks import events_attach

        self.events = events_attach(self)  # semc.events: messages and QC; sends "run started"
        logger.info("run %s on session %s (%s), steps %s, Dask dashboard %s", self.params.runname,
                    self.session.name, self.session.pk, ",".join(self.params.steps), self.cluster.dashboard_link)

    # --- one pass -------------------------------------------------------------------------------
    def poll(self) -> int:
        """Register exposures newer than the last seen id; a periodic full reconcile refreshes done/rejected."""
        new = exposure_ids_list(session_id=self.session.pk, preset=self.params.preset, after_id=self.last_id)
        if new:
            self.known.update(new)
            self.last_id = max(self.last_id, max(pk for pk, _ in new))
            self.last_new_at = self.clock()
            names = dict(_filenames([pk for pk, _ in new]))
            for step in self.params.steps:
                ledger.ledger_sync(self.run, step, [(pk, names.get(pk, ""), ts) for pk, ts in new])
        if self.clock() - self.last_reconcile >= self.params.reconcile_interval_s:
            self.reconcile()
        elif new:  # only the new exposures need their rejections checked: no full scan on the hot path
            self.rejected |= self._rejected([pk for pk, _ in new])
        return len(new)

    def reconcile(self) -> None:
        """Full reconcile: done sets from the classic finishing rows, rejections of every known exposure."""
        ids = set(self.known)
        for step in self.params.steps:
            self.done[step] = set(self.stores[step].done_ids(self.states[step])) & ids | self.done[step]
        self._ledger_mark_done_from_classic()
        self.rejected = self._rejected(ids)
        self.last_reconcile = self.clock()

    def _rejected(self, ids) -> set[int]:
        if not (self.params.apply_rejects or self.params.tilt_mode != "all"):
            return set()
        return rejected_ids(image_ids=ids, tilt_mode=self.params.tilt_mode, use_viewer=self.params.apply_rejects,
                            use_assessment=self.params.apply_rejects)

    def _ledger_mark_done_from_classic(self) -> None:
        for step in self.params.steps:
            open_lines = ledger.ledger_lines(self.run, step).exclude(state=StepState.DONE)
            for pk in set(open_lines.values_list("exposure_id", flat=True)) & self.done[step]:
                with self.events.stored(step, pk, {"reconciled": True}):  # semc.events: outbox in this transaction
                    ledger.ledger_done(self.run, step, pk, started_at=None, finished_at=None, worker_host="",
                                       durations={}, result={"reconciled": True})

    def _waiting_and_blocked(self) -> tuple[set[int], set[int]]:
        waiting, blocked = set(), set()
        moment = ledger.now()
        for step in self.params.steps:
            rows = ledger.ledger_lines(self.run, step).filter(
                state__in=[StepState.FAILED, StepState.DEFERRED, StepState.QUARANTINED]
            ).values_list("exposure_id", "state", "next_attempt_at")
            for pk, state, retry_at in rows:
                if state == StepState.QUARANTINED:
                    blocked.add(pk)
                elif retry_at is not None and retry_at > moment:
                    waiting.add(pk)
        return waiting, blocked

    def capacity(self) -> int:
        if self.params.max_in_flight:
            return self.params.max_in_flight
        workers = len(self.cluster.client.scheduler_info().get("workers", {}))
        return max(2, 2 * workers)

    def submit_ready(self) -> int:
        if self.stop_requested:
            return 0
        free = self.capacity() - len(self.in_flight)
        if self.params.limit is not None:
            free = min(free, self.params.limit - self.stored - len(self.in_flight))
        if free <= 0:
            return 0
        plan = self._plan(limit=free)
        for exposure_id in plan:
            self._submit(exposure_id)
        if len(plan) % 2:  # the alternation newest / oldest carries over to the next plan
            self.newest_next = not self.newest_next
        return len(plan)

    def _submit(self, exposure_id: int) -> None:
        try:
            inputs = exposure_inputs_get(exposure_id)
        except ProcessingError as exc:
            self._failed(exposure_id, self._pending_steps(exposure_id), exc)
            return
        n = self.submissions.get(exposure_id, 0) + 1
        self.submissions[exposure_id] = n
        key = f"semc-{self.run.pk}-{exposure_id}-{n}"
        config = _steps_config(self.params.pipeline, self._pending_steps(exposure_id))
        future = self.cluster.client.submit(exposure_pipeline, inputs, config, key, key=key, pure=False,
                                            resources=self.cluster.gpu_resources or None, retries=0)
        self.in_flight[exposure_id] = _InFlight(key=key, future=future, submitted=self.clock())
        for step in config.steps:
            ledger.ledger_submitted(self.run, step, exposure_id, lease_owner=f"{socket.gethostname()}:{key}",
                                    lease_seconds=3600)
        logger.debug("exposure=%s submitted as %s", exposure_id, key)

    def _pending_steps(self, exposure_id: int) -> tuple[str, ...]:
        return tuple(s for s in self.params.steps if exposure_id not in self.done[s])

    # --- results --------------------------------------------------------------------------------
    def collect(self, timeout_s: float) -> int:
        """Store every finished result (waiting up to ``timeout_s`` for the first); returns how many."""
        if not self.in_flight:
            time.sleep(timeout_s)
            return 0
        futures = [f.future for f in self.in_flight.values()]
        try:
            finished = wait(futures, timeout=timeout_s, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return 0
        count = 0
        for exposure_id, entry in list(self.in_flight.items()):
            if entry.future in finished:
                self._finish(exposure_id, entry)
                count += 1
        if count:
            self.views_dirty = True
            if self.clock() - self.views_at >= self.params.view_interval_s:
                self.views_update()
        return count

    def views_update(self) -> None:
        """Refresh the run's RELION STAR view (corrected_micrographs.star, micrographs_ctf.star).

        Each refresh rewrites the files from every stored result, so it runs at most every
        ``view_interval_s`` while results stream in, and once more at shutdown."""
        self.views_at = self.clock()
        self.views_dirty = False
        for step in self.params.steps:
            try:
                self.stores[step].view_update(self.states[step], self.run)
            except Exception:  # noqa: BLE001 - a view is a convenience: log, never stop processing
                logger.exception("step=%s could not update the RELION view", step)

    def _finish(self, exposure_id: int, entry: _InFlight) -> None:
        del self.in_flight[exposure_id]
        steps = self._pending_steps(exposure_id)
        try:
            outcome: PipelineOutcome = entry.future.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker, a cancelled task: a failed attempt
            self._failed(exposure_id, steps, exc)
            return
        finally:
            entry.future.release()  # never keep results alive: the cluster could not scale down (R3)
        for step in steps:
            if step in outcome.outcomes:
                self._store(step, exposure_id, outcome.outcomes[step], outcome)
            elif step in outcome.errors:
                self._failed(exposure_id, [s for s in steps if s not in outcome.outcomes], outcome.errors[step])
                break

    def _store(self, step: str, exposure_id: int, result: Any, outcome: PipelineOutcome) -> None:
        if exposure_id in self.done[step]:
            logger.warning("exposure=%s step=%s duplicate result discarded", exposure_id, step)
            return
        try:
            summary = self.stores[step].outcome_save(self.states[step], exposure_id, result, outcome)
        except Exception as exc:  # noqa: BLE001 - a store failure is recorded like any other
            logger.exception("exposure=%s step=%s store failed", exposure_id, step)
            self._failed(exposure_id, [step], exc)
            return
        started = getattr(result, "started_at_epoch_s", None)
        finished = getattr(result, "finished_at_epoch_s", None)
        with self.events.stored(step, exposure_id, summary):  # semc.events: outbox + QC in this transaction
            ledger.ledger_done(self.run, step, exposure_id,
                               started_at=dt.datetime.fromtimestamp(started) if started else None,
                               finished_at=dt.datetime.fromtimestamp(finished) if finished else None,
                               worker_host=getattr(result, "worker_host", ""),
                               durations=dict(getattr(result, "timings_s", {}) or {}), result=summary)
        self.done[step].add(exposure_id)
        if step == self.params.steps[-1]:
            self.stored += 1
        brief = {k: round(v, 2) if isinstance(v, float) else v for k, v in summary.items()
                 if k in ("aligned_filename", "drift_total_px", "defocus_u_A", "defocus_v_A", "resolution_A")}
        logger.info("exposure=%s step=%s stored %s", exposure_id, step, brief)

    def _failed(self, exposure_id: int, steps, error: BaseException) -> None:
        for step in steps:
            if isinstance(error, _DEFER) or (isinstance(error, InputMissing) and error.path):
                ledger.ledger_deferred(self.run, step, exposure_id, reason=str(error),
                                       retry_in_s=self.params.defer_retry_s)
                logger.info("exposure=%s step=%s deferred: %s", exposure_id, step, error)
            else:
                with self.events.failed(step, exposure_id, error):  # semc.events: outbox in this transaction
                    state = ledger.ledger_failed(self.run, step, exposure_id, error=error,
                                                 max_attempts=self.params.max_attempts,
                                                 backoff_base_s=self.params.backoff_base_s)
                logger.warning("exposure=%s step=%s %s: %s", exposure_id, step, state, error)

    # --- the loop -------------------------------------------------------------------------------
    def _plan(self, limit: int) -> list[int]:
        done_all = set.intersection(*self.done.values()) if self.done else set()
        waiting, blocked = self._waiting_and_blocked()
        live = self.params.wait and self.clock() - self.last_new_at < self.params.live_window_s
        return plan_batch(self.known, done_all, waiting, self.in_flight, self.rejected | blocked,
                          limit=limit, live=live, reverse=self.params.reverse, newest_next=self.newest_next)

    def finished(self) -> bool:
        """Whether the run is over: the limit is reached, or nothing is in flight and nothing is eligible
        now, and (``--no-wait``) no real failure is due for a retry within the grace period or (wait mode
        with ``idle_exit_s``) no new exposure arrived for that long."""
        if self.in_flight:
            return False
        if self.params.limit is not None and self.stored >= self.params.limit:
            return True
        if self.params.wait:  # idle exit: no new exposure for a while, and nothing left to do now
            idle = self.params.idle_exit_s is not None and self.clock() - self.last_new_at > self.params.idle_exit_s
            return idle and not self._plan(limit=1)
        if self._plan(limit=1):
            return False
        soon = ledger.now() + dt.timedelta(seconds=self.params.grace_s)
        return not any(ledger.ledger_lines(self.run, step).filter(state=StepState.FAILED, next_attempt_at__lte=soon)
                       .exists() for step in self.params.steps)

    def run_loop(self) -> None:
        from semc.base.store import appion_job_aborted

        last_abort_check = self.clock()
        stop_at = None
        while True:
            if self.stop_requested and stop_at is None:
                stop_at = self.clock()
            if self.stop_requested >= 2 or (stop_at is not None and self.clock() - stop_at > self.params.grace_s):
                break
            if not self.stop_requested:
                self.poll()
                self.submit_ready()
            self.collect(self.params.poll_interval_s)
            if self.stop_requested and not self.in_flight:
                break
            if not self.stop_requested and self.finished():
                break
            if self.clock() - last_abort_check > self.params.reconcile_interval_s:
                last_abort_check = self.clock()
                if appion_job_aborted(self.job):
                    logger.warning("the job was aborted from the web: stopping")
                    self.stop_requested = 1

    def shutdown(self, *, failed: bool) -> None:
        """Cancel what is left, close nothing else (the caller owns the cluster), set the status letters."""
        from semc.base.store import appion_job_status_set

        for entry in self.in_flight.values():
            entry.future.cancel()
        for exposure_id in list(self.in_flight):
            for step in self._pending_steps(exposure_id):
                ledger.ledger_deferred(self.run, step, exposure_id, reason="cancelled at shutdown", retry_in_s=0)
        self.in_flight.clear()
        if self.views_dirty:
            self.views_update()
        appion_job_status_set(self.job, "E" if failed else "D")
        if getattr(self, "events", None) is not None:  # semc.events: run stopped/failed; publisher drains
            self.events.close(failed=failed)
        ledger.run_close(self.run, failed=failed)


def _steps_config(config: PipelineConfig, steps: tuple[str, ...]) -> PipelineConfig:
    return PipelineConfig(steps=steps, motioncorrection=config.motioncorrection, ctfestimation=config.ctfestimation)


def _filenames(ids: list[int]) -> list[tuple[int, str]]:
    from semc.models.leginon import AcquisitionImageData

    return list(AcquisitionImageData.objects.filter(id__in=ids).values_list("id", "filename"))


def _project_of_session(session_id: int) -> int | None:
    from semc.models.projects import ProjectExperiment

    row = ProjectExperiment.objects.filter(session_id=session_id).order_by("id").first()
    return row.project_id if row else None


def _user() -> str:
    import getpass

    return getpass.getuser()


class SignalPolicy:
    """SIGTERM/SIGINT: the first stops submission (graceful), the second stops at once. SIGCONT: ignored."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "SignalPolicy":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self._handle)
        self.previous[signal.SIGCONT] = signal.signal(signal.SIGCONT, signal.SIG_IGN)
        return self

    def _handle(self, signum, frame) -> None:
        self.controller.stop_requested += 1
        logger.warning("received %s: %s", signal.Signals(signum).name,
                       "finishing work in flight" if self.controller.stop_requested == 1 else "stopping now")

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def loop_run(params: LoopParams, *, cluster_backend: str | None = None, n_workers: int | None = None,
             controller_factory: Callable[[LoopParams, Any], Controller] | None = None,
             dry_run: Callable[[LoopParams, Any], int] | None = None) -> int:
    """Run the controller until it is finished or stopped; returns the exit status (0 clean, 1 failed).

    ``controller_factory(params, cluster)`` builds the controller (the classic scripts pass a
    subclass that selects images); ``dry_run(params, cluster)`` runs ``commit=False`` runs
    (default: the classic dry run, which writes no database row at all).
    """
    from pathlib import Path

    from semc.base.runlock import RunDirLock
    from semc.cluster import cluster_open

    with RunDirLock(params.rundir):
        cluster = cluster_open(cluster_backend, rundir=Path(params.rundir), n_workers=n_workers)
        if not params.commit:  # a dry run writes no database row at all, so it does not use the Controller
            if dry_run is None:
                from semc.classic.dryrun import dry_run
            with cluster:
                return dry_run(params, cluster)
        controller = (controller_factory or Controller)(params, cluster)
        failed = False
        try:
            controller.prepare()
            with SignalPolicy(controller):
                controller.run_loop()
        except BaseException:
            failed = True
            logger.exception("the controller failed")
            raise
        finally:
            try:
                if hasattr(controller, "job"):
                    controller.shutdown(failed=failed)
            finally:
                cluster.close()
    return 0
