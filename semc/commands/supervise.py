"""``semc supervise``: carry out the API's start/stop/resume requests, one ``semc loop`` per session.

One supervisor process polls the recorded control requests (:class:`~semc.web.models.ControlRequest`),
keeps one :class:`~semc.web.models.SupervisedSession` row per session (what is wanted, what runs) and runs
each wanted loop as a child process from an argument list (``python -m semc loop --session <id> ...``),
in its own process group, with its output appended to ``<rundir>/semc-loop.log``. Stop is graceful: SIGTERM
(the loop stops submitting and finishes its work in flight), a second SIGTERM after ``--stop-grace``, then
SIGKILL of the process group. A child that fails is restarted with a back-off, up to ``--max-failures``
times in a row; then the session is marked failed until someone resumes it.

Run directories are ``<processing root>/<session name>/ddstack/<run name>``: both names are checked by
pattern and the result must lie inside the root. The supervisor's own SIGTERM stops every child gracefully
and leaves the sessions *wanted running*, so a restarted supervisor carries on where it stopped; children
of a supervisor that died are adopted (by pid) when still alive.

Example::

    semc supervise --processing-root /data/appion --cluster slurm
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from semc.cli import django_setup

logger = logging.getLogger(__name__)

LOG_NAME = "semc-loop.log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processing-root", default=None,
                        help="where run directories go (default: $SEMC_HOME/appion)")
    parser.add_argument("--cluster", default=None, help="passed to each loop: local, slurm or an address")
    parser.add_argument("--workers", type=int, default=None, help="passed to each loop (local cluster)")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls of requests")
    parser.add_argument("--stop-grace", type=float, default=150.0,
                        help="seconds a stopping loop may take before a second SIGTERM (then SIGKILL)")
    parser.add_argument("--max-failures", type=int, default=3, help="failed starts in a row before giving up")
    parser.add_argument("--restart-backoff", type=float, default=10.0, help="seconds before a failed loop restarts")
    parser.add_argument("--loop-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for every loop (repeat), e.g. --loop-arg=--max-in-flight=8")
    parser.add_argument("--once", action="store_true", help="one pass (requests, then children), then exit")


@dataclass
class Child:
    """A running loop: ours (``process``) or adopted from a previous supervisor (pid only)."""

    session_id: int
    pid: int
    process: subprocess.Popen | None = None
    log: object | None = None
    term_sent_at: float | None = None
    signals: int = 0

    def exit_code(self) -> int | None:
        """The exit status once the child has ended (adopted children: -1 when gone), else None."""
        if self.process is not None:
            return self.process.poll()
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -1
        except PermissionError:
            return None
        return None

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig) if sig == signal.SIGKILL else os.kill(self.pid, sig)
        except ProcessLookupError:
            return
        self.signals += 1
        self.term_sent_at = self.term_sent_at or time.monotonic()

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


@dataclass
class SupervisorConfig:
    processing_root: Path
    cluster: str | None = None
    workers: int | None = None
    poll_interval_s: float = 2.0
    stop_grace_s: float = 150.0
    max_failures: int = 3
    restart_backoff_s: float = 10.0
    loop_args: tuple[str, ...] = ()
    python: str = field(default_factory=lambda: sys.executable)


def _now() -> dt.datetime:
    return dt.datetime.now()


def rundir_for(root: Path, session_name: str, runname: str) -> Path:
    """``<root>/<session>/ddstack/<run>``, refusing names that could leave the root."""
    from semc.base.errors import InvalidParameters
    from semc.base.retrieve import path_component_check
    from semc.web.api.params import NAME_RE

    for what, name in (("session name", session_name), ("run name", runname)):
        if not NAME_RE.match(name or ""):
            raise InvalidParameters(f"invalid {what} {name!r} for a run directory")
        path_component_check(name, what=what)
    root = root.resolve()
    rundir = (root / session_name / "ddstack" / runname).resolve()
    if not rundir.is_relative_to(root):
        raise InvalidParameters(f"run directory {rundir} would leave {root}")
    return rundir


def _is_our_loop(pid: int, rundir: str) -> bool:
    """Whether the process is still a ``semc loop`` on that run directory (a pid can be reused after a
    reboot: never signal a stranger). Without /proc nothing is adopted."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"loop" in argv and os.fsencode(rundir) in argv


def loop_argv(config: SupervisorConfig, *, session_id: int, project_id: int, rundir: str, params) -> list[str]:
    """The argument list of one supervised loop (never a shell string)."""
    argv = [config.python, "-m", "semc", "loop", "--session", str(session_id), "--projectid", str(project_id),
            "--steps", ",".join(params.steps), "--engine", params.engine, "--ctf-engine", params.ctf_engine,
            "--rundir", rundir, "--runname", os.path.basename(rundir), "--bin", f"{params.output_bin:g}"]
    if params.preset:
        argv += ["--preset", params.preset]
    if config.cluster:
        argv += ["--cluster", config.cluster]
    if config.workers:
        argv += ["--workers", str(config.workers)]
    return argv + list(config.loop_args)


class Supervisor:
    """Requests → wanted state (database) → children. Only this process starts or stops loops."""

    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        self.children: dict[int, Child] = {}
        self.next_start: dict[int, float] = {}
        self.stop_requested = False
        self.host = socket.gethostname()

    # --- requests ----------------------------------------------------------------------------
    def requests_handle(self) -> int:
        from semc.base.errors import ProcessingError
        from semc.web.models import ControlRequest

        handled = 0
        for request in ControlRequest.objects.filter(state=ControlRequest.State.PENDING).order_by("created_at", "id"):
            try:
                message = self._apply(request)
                state = ControlRequest.State.DONE
            except ProcessingError as exc:
                message, state = str(exc), ControlRequest.State.REFUSED
                logger.warning("request %s (%s %s) refused: %s", request.pk, request.action, request.session_name,
                               exc)
            ControlRequest.objects.filter(pk=request.pk).update(state=state, handled_at=_now(), message=message)
            handled += 1
        return handled

    def _apply(self, request) -> str:
        from semc import models as m
        from semc.base.errors import InputMissing
        from semc.web.api.params import parameters_from_dict
        from semc.web.models import ControlRequest, SupervisedSession

        session = m.SessionData.objects.filter(pk=request.session_id).first()
        if session is None:
            raise InputMissing(f"no session {request.session_id} in the Leginon database")
        row, _ = SupervisedSession.objects.get_or_create(
            session_id=session.pk, defaults={"session_name": session.name, "project_id": request.project_id})
        if request.action == ControlRequest.Action.STOP:
            SupervisedSession.objects.filter(pk=row.pk).update(desired="stopped", failures=0)
            child = self.children.get(session.pk)
            if child is None:
                SupervisedSession.objects.filter(pk=row.pk).update(state="stopped")
                return "nothing was running"
            self._terminate(child)
            return f"stopping the loop (pid {child.pid})"
        params = parameters_from_dict(request.parameters)
        rundir = self._rundir(session, row, params, resume=request.action == ControlRequest.Action.RESUME)
        child = self.children.get(session.pk)
        restart = child is not None and (row.rundir != str(rundir) or row.parameters != params.as_dict())
        SupervisedSession.objects.filter(pk=row.pk).update(
            desired="running", parameters=params.as_dict(), rundir=str(rundir), project_id=request.project_id,
            session_name=session.name, failures=0, message="",
            state="running" if child is not None and not restart else "starting")
        self.next_start.pop(session.pk, None)
        if restart:
            self._terminate(child)
            return f"restarting with new parameters in {rundir}"
        return f"{request.action} in {rundir}" if child is None else "already running"

    def _rundir(self, session, row, params, *, resume: bool) -> Path:
        from semc.web import stats

        if resume and row.rundir and Path(row.rundir).name == params.runname:
            return Path(row.rundir)
        if resume:
            run = stats.run_current(session.pk)
            if run is not None and run.name == params.runname and os.path.isabs(run.rundir):
                return Path(run.rundir)
        return rundir_for(self.config.processing_root, session.name, params.runname)

    # --- children ----------------------------------------------------------------------------
    def children_reconcile(self) -> None:
        from semc.web.models import SupervisedSession

        for row in SupervisedSession.objects.all():
            child = self.children.get(row.session_id)
            if child is not None and (code := child.exit_code()) is not None:
                self._ended(row, child, code)
                child = None
            if child is not None:
                if row.desired == "stopped" and child.term_sent_at is None:
                    self._terminate(child)
                self._escalate(child)
            elif (row.desired == "running" and row.state != "failed" and not self.stop_requested
                  and time.monotonic() >= self.next_start.get(row.session_id, 0.0)):
                self._start(row)

    def _ended(self, row, child: Child, code: int) -> None:
        from semc.web.models import SupervisedSession

        child.close()
        del self.children[row.session_id]
        values = {"pid": None, "exit_code": code, "stopped_at": _now()}
        if child.term_sent_at is not None:  # we stopped it: for good, or for a restart / our own shutdown
            values["state"] = "stopped" if row.desired == "stopped" else "starting"
        elif row.desired == "stopped":
            values["state"] = "stopped"
        elif code == 0:
            values.update(state="stopped", desired="stopped", message="the loop finished by itself")
        else:
            failures = row.failures + 1
            values.update(failures=failures, message=f"the loop exited with status {code}; see "
                                                     f"{os.path.join(row.rundir, LOG_NAME)}")
            values["state"] = "failed" if failures >= self.config.max_failures else "starting"
            self.next_start[row.session_id] = time.monotonic() + self.config.restart_backoff_s * failures
            logger.warning("session=%s loop exited with %s (%s failures in a row)", row.session_name, code, failures)
        logger.info("session=%s loop pid %s ended with %s", row.session_name, child.pid, code)
        SupervisedSession.objects.filter(pk=row.pk).update(**values)

    def _start(self, row) -> None:
        from semc.base.errors import ProcessingError
        from semc.web.api.params import parameters_from_dict
        from semc.web.models import SupervisedSession

        try:
            params = parameters_from_dict(row.parameters)
            rundir = Path(row.rundir)
            rundir.mkdir(parents=True, exist_ok=True)
            argv = loop_argv(self.config, session_id=row.session_id, project_id=row.project_id,
                             rundir=str(rundir), params=params)
        except (ProcessingError, OSError) as exc:
            SupervisedSession.objects.filter(pk=row.pk).update(state="failed", message=str(exc))
            logger.error("session=%s cannot start: %s", row.session_name, exc)
            return
        log = open(rundir / LOG_NAME, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        log.write(f"# semc supervise {_now():%Y-%m-%d %H:%M:%S}: {' '.join(argv)}\n".encode())
        log.flush()
        logger.debug("session=%s argv %s", row.session_name, argv)
        # the loop is SEMC itself, started from an argument list in its own process group (so a stop
        # can reach the loop's Dask workers too); its output goes to the run directory's log
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, close_fds=True)
        self.children[row.session_id] = Child(session_id=row.session_id, pid=process.pid, process=process, log=log)
        SupervisedSession.objects.filter(pk=row.pk).update(state="running", pid=process.pid, host=self.host,
                                                           started_at=_now(), stopped_at=None, exit_code=None)
        logger.info("session=%s loop started, pid %s, run directory %s", row.session_name, process.pid, rundir)

    def _terminate(self, child: Child) -> None:
        from semc.web.models import SupervisedSession

        if child.term_sent_at is None:
            child.signal(signal.SIGTERM)
            SupervisedSession.objects.filter(session_id=child.session_id).update(state="stopping")

    def _escalate(self, child: Child) -> None:
        """A second SIGTERM after the grace period (the loop then stops at once), SIGKILL 10 s later."""
        if child.term_sent_at is None:
            return
        waited = time.monotonic() - child.term_sent_at
        if waited > self.config.stop_grace_s + 10 and child.signals >= 2:
            child.signal(signal.SIGKILL)
        elif waited > self.config.stop_grace_s and child.signals == 1:
            child.signal(signal.SIGTERM)

    def adopt(self) -> None:
        """Children of a supervisor that died: keep watching those still alive on this host."""
        from semc.web.models import SupervisedSession

        for row in SupervisedSession.objects.filter(host=self.host, pid__isnull=False):
            alive = Child(session_id=row.session_id, pid=row.pid).exit_code() is None
            if alive and _is_our_loop(row.pid, row.rundir):
                self.children.setdefault(row.session_id, Child(session_id=row.session_id, pid=row.pid))
                logger.info("session=%s adopted running loop pid %s", row.session_name, row.pid)
                continue
            if alive:  # a reused pid: never signal a stranger
                logger.warning("session=%s pid %s is no longer its loop: not adopted", row.session_name, row.pid)
            SupervisedSession.objects.filter(pk=row.pk).update(
                pid=None, state="starting" if row.desired == "running" else "stopped")

    # --- the loop ------------------------------------------------------------------------------
    def run_once(self) -> None:
        self.requests_handle()
        self.children_reconcile()

    def shutdown(self) -> None:
        """Stop every child gracefully (they stay wanted running for the next supervisor)."""
        for child in self.children.values():
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.stop_grace_s
        while self.children and time.monotonic() < deadline + 10:
            self.children_reconcile()
            for child in self.children.values():
                self._escalate(child)
            time.sleep(0.2)

    def run(self, *, once: bool = False, lock_dir: Path | None = None) -> int:
        """Poll and reconcile until SIGTERM/SIGINT. ``lock_dir``: one supervisor per folder (its lock)."""
        from semc.base.errors import ConfigurationError
        from semc.base.runlock import RunDirLock, RunDirLocked

        lock = RunDirLock(lock_dir) if lock_dir is not None else None
        if lock is not None:
            try:
                lock.acquire()
            except RunDirLocked:
                owner = lock.owner() or {}
                raise ConfigurationError(f"another semc supervise runs (pid {owner.get('pid')} on "
                                         f"{owner.get('host')}, since {owner.get('started')})",
                                         path=str(lock_dir)) from None
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.adopt()
            while not self.stop_requested:
                self.run_once()
                if once:
                    return 0
                time.sleep(self.config.poll_interval_s)
            self.shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if lock is not None:
                lock.release()
        return 0

    def _on_signal(self, signum, frame) -> None:
        self.stop_requested = True
        logger.warning("received %s: stopping every loop gracefully", signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    django_setup()
    from django.conf import settings

    root = Path(args.processing_root).expanduser() if args.processing_root else Path(settings.SEMC_HOME) / "appion"
    config = SupervisorConfig(processing_root=root, cluster=args.cluster, workers=args.workers,
                              poll_interval_s=args.poll_interval, stop_grace_s=args.stop_grace,
                              max_failures=args.max_failures, restart_backoff_s=args.restart_backoff,
                              loop_args=tuple(args.loop_arg))
    logger.info("supervising under %s (poll every %.1f s)", root, config.poll_interval_s)
    return Supervisor(config).run(once=args.once, lock_dir=Path(settings.SEMC_HOME) / "supervise")
