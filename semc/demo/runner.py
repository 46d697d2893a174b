"""``semc demo``: a live simulated session processed by the daemon, watched, then graded against the truth.

The demo is an operator with two processes of its own, on the embedded defaults (SQLite, a local
Dask cluster, the built-in engines):

- the *microscope*: ``semc simulate session`` writing one exposure (movie, gain, defects, ground
  truth, Leginon rows) every ``interval`` seconds;
- the *daemon*: ``semc loop`` with motion correction and CTF estimation chained, on a local cluster,
  started once the session's first row exists and stopped by itself after the last exposure
  (``--limit``), or by the demo once every exposure is done or quarantined.

Meanwhile it reads the Leginon rows and SEMC's ledger twice a second and draws a progress line;
at the end it reads back the stored classic rows and the ground truth and prints the summary
(also written as JSON beside the two processes' logs under ``$SEMC_HOME/demo/<session>/``).
Both processes run ``semc.cli.main`` in spawned children whose output goes to those logs.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from semc.base.errors import InvalidParameters
from semc.demo.home import environment_prepare

__all__ = ["DEMO_PRESET", "WEB_URL", "DemoOptions", "child_main", "demo_run"]

logger = logging.getLogger(__name__)

DEMO_PRESET = "enn"
WEB_URL = "http://127.0.0.1:8000/"
#: rough seconds to simulate and process one exposure on a 2-core machine (for the time-out and a warning)
_COST_S = {"small": 5.0, "k3": 200.0, "falcon4-eer": 220.0}
_POLL_S = 0.5
#: seconds a daemon that has stored every exposure gets to stop by itself before it is asked to
_SELF_STOP_S = 60.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the demo simulates and how it processes it.

    ``home`` None: a fresh temporary SEMC home, removed at the end unless ``keep``.
    ``workers`` None: half the CPUs (at least one, at most four): the microscope needs the rest.
    ``timeout_s`` None: from the camera's cost per exposure.
    """

    home: Path | None = None
    keep: bool = False
    exposures: int = 20
    camera: str = "small"
    interval_s: float = 4.0
    workers: int | None = None
    session: str | None = None
    seed: int = 1
    patches: tuple[int, int] = (3, 3)
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        from semc.simulation.session import CAMERA_PRESETS

        if self.camera not in CAMERA_PRESETS:
            raise InvalidParameters(f"camera must be one of {', '.join(sorted(CAMERA_PRESETS))}", step="demo")
        if self.exposures < 1 or self.interval_s < 0 or (self.workers is not None and self.workers < 1):
            raise InvalidParameters("need >= 1 exposure, interval >= 0 and >= 1 worker", step="demo")
        if self.session is not None and (not self.session.isidentifier() or len(self.session) > 40):
            raise InvalidParameters(f"session name {self.session!r}: letters, digits and _ only (<= 40)",
                                    step="demo")

    @property
    def n_workers(self) -> int:
        from semc.base.parallel import available_cpus

        return self.workers or max(1, min(4, available_cpus() // 2))

    @property
    def time_limit_s(self) -> float:
        if self.timeout_s is not None:
            return self.timeout_s
        return 300.0 + self.exposures * (self.interval_s + 3 * _COST_S[self.camera])


def child_main(argv: list[str], log_path: str) -> None:
    """A spawned child: ``semc <argv>`` with its output (and its children's) in ``log_path``."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    from semc.cli import main

    sys.exit(main(argv))


def _session_name(options: DemoOptions) -> str:
    return options.session or time.strftime("demo%y%m%d%H%M%S")


def _commands(options: DemoOptions, *, session: str, rundir: Path) -> dict[str, list[str]]:
    from semc.simulation.session import CAMERA_PRESETS

    camera = CAMERA_PRESETS[options.camera]
    microscope = ["simulate", "session", "--name", session, "--exposures", str(options.exposures), "--camera",
                  options.camera, "--interval", f"{options.interval_s:g}", "--seed", str(options.seed)]
    daemon = ["loop", "--session", session, "--preset", DEMO_PRESET, "--steps", "motioncorrection,ctfestimation",
              "--cluster", "local", "--workers", str(options.n_workers), "--rundir", str(rundir), "--limit",
              str(options.exposures), "--poll-interval", str(_POLL_S), "--patches", "{},{}".format(*options.patches),
              "--eer-fraction", str(camera.eer_raw_frames_per_fraction)]
    return {"microscope": microscope, "daemon": daemon}


class _Display:
    """The progress line: redrawn in place on a terminal, one line per change otherwise."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.unicode = (getattr(stream, "encoding", None) or "").lower().replace("-", "") == "utf8"
        self.last = None

    def show(self, progress) -> None:
        from semc.demo.display import progress_line

        key = (progress.arrived, progress.stored, progress.failed, progress.phase)
        if not self.tty and key == self.last:
            return
        self.last = key
        line = progress_line(progress, unicode=self.unicode)
        self.stream.write(f"\r{line}\x1b[K" if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last is not None:
            self.stream.write("\n")
            self.stream.flush()


def _stop(process, *, grace_s: float) -> None:
    """SIGTERM (the daemon finishes work in flight), again after ``grace_s`` (stop now), then SIGKILL."""
    for _ in range(2):
        if not process.is_alive():
            return
        process.terminate()
        process.join(grace_s)
    if process.is_alive():
        process.kill()
        process.join(10)


def _log_tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in lines[-n:])


class _Watch:
    """The demo's two children and the loop that watches them and the database."""

    def __init__(self, options: DemoOptions, *, session: str, rundir: Path, logs: Path) -> None:
        self.options, self.session, self.rundir, self.logs = options, session, rundir, logs
        self.commands = _commands(options, session=session, rundir=rundir)
        self.context = multiprocessing.get_context("spawn")
        self.microscope = self._spawn("microscope")
        self.daemon = None
        self.problems: list[str] = []
        self.stopping = False
        self.settled_at: float | None = None
        self.microscope_failed = False

    def _spawn(self, role: str):
        process = self.context.Process(target=child_main, name=f"semc-demo-{role}",
                                       args=(self.commands[role], str(self.logs / f"{role}.log")))
        process.start()
        return process

    def _session_exists(self) -> bool:
        from semc import models as m

        return m.SessionData.objects.filter(name=self.session).exists()

    def _check(self, elapsed: float) -> None:
        """Start the daemon once the session exists; stop it when settled, on a failure, or at the limit."""
        from semc.demo.collect import run_find, run_settled

        if self.daemon is None:
            if self._session_exists():
                self.daemon = self._spawn("daemon")
            elif not self.microscope.is_alive():
                self.problems.append(f"the microscope stopped (exit {self.microscope.exitcode}) before its first "
                                     f"exposure; its log:\n{_log_tail(self.logs / 'microscope.log')}")
            return
        if self.stopping:
            return
        reason = None
        if self.microscope.exitcode not in (None, 0) and not self.microscope_failed:
            self.microscope_failed = True  # the daemon still processes what arrived, then is stopped
            self.problems.append(f"the microscope failed (exit {self.microscope.exitcode}): "
                                 f"{_log_tail(self.logs / 'microscope.log', 1).strip()} "
                                 f"(log: {self.logs / 'microscope.log'})")
        if elapsed > self.options.time_limit_s:
            reason = f"time limit of {self.options.time_limit_s:.0f} s reached (--timeout)"
        elif self.microscope.exitcode is not None and run_settled(run_find(str(self.rundir)), self._expected()):
            # everything that arrived is done or quarantined: nothing more will happen. All done: the daemon
            # stops by itself (--limit), so only a daemon still running a while later is stopped
            self.settled_at = self.settled_at or elapsed
            if self.microscope_failed or self._quarantined() or elapsed - self.settled_at > _SELF_STOP_S:
                reason = ""
        if reason is not None:
            if reason:
                self.problems.append(reason)
            self.stopping = True
            self.daemon.terminate()  # SIGTERM: the daemon lets work in flight finish

    def _expected(self) -> int:
        """Exposures the daemon will get: all of them, or those written before the microscope failed."""
        if not self.microscope_failed:
            return self.options.exposures
        from semc import models as m

        return m.AcquisitionImageData.objects.filter(session__name=self.session, preset__name=DEMO_PRESET).count()

    def _quarantined(self) -> bool:
        from semc.demo.collect import run_find
        from semc.models.semc import ExposureStep, StepState

        return ExposureStep.objects.filter(run=run_find(str(self.rundir)), state=StepState.QUARANTINED).exists()

    def phase(self) -> str:
        from semc.demo.collect import run_find

        if self.daemon is None:
            return "microscope starting"
        if self.stopping:
            return "stopping the daemon"
        if run_find(str(self.rundir)) is None:
            return "daemon starting"
        return "live" if self.microscope.is_alive() else "catching up"

    def run(self, display: _Display, started: float) -> None:
        from semc.demo.collect import progress_snapshot

        while True:
            elapsed = time.monotonic() - started
            self._check(elapsed)
            if self.problems and self.daemon is None:
                return
            display.show(progress_snapshot(session_name=self.session, preset=DEMO_PRESET, rundir=str(self.rundir),
                                           planned=self.options.exposures, elapsed_s=elapsed, phase=self.phase()))
            if self.daemon is not None and not self.daemon.is_alive():
                break
            if self.stopping and elapsed > self.options.time_limit_s + 120:
                _stop(self.daemon, grace_s=30)
            time.sleep(_POLL_S)
        self.daemon.join()
        if self.daemon.exitcode != 0:
            self.problems.append(f"the daemon exited with status {self.daemon.exitcode}; its log:\n"
                                 f"{_log_tail(self.logs / 'daemon.log')}")
        self.microscope.join(5)

    def close(self) -> None:
        """Stop whatever still runs (Ctrl-C, an error in the demo itself)."""
        if self.daemon is not None:
            _stop(self.daemon, grace_s=60)
        _stop(self.microscope, grace_s=10)


def _header(options: DemoOptions, *, home: Path, session: str, commands: dict[str, list[str]]) -> str:
    from semc.simulation.session import CAMERA_PRESETS

    camera = CAMERA_PRESETS[options.camera]
    lines = [
        (f"SEMC demo: session {session}, {options.exposures} exposures from a simulated {camera.instrument_name} "
        f"({camera.shape[1]}x{camera.shape[0]}, {camera.n_frames} frames, {camera.fmt}), one every "
        f"{options.interval_s:g} s, with gain, defects and varied defocus"),
        f"SEMC home: {home} (SQLite; logs and summary in {home / 'demo' / session})",
        f"  the microscope: semc {' '.join(commands['microscope'])}",
        f"  the daemon:     semc {' '.join(commands['daemon'])}",
    ]
    if _COST_S[options.camera] > 60:
        lines.append(f"  note: a {options.camera} exposure takes about {_COST_S[options.camera] / 60:.0f} min to "
                     "simulate and process on a 2-core machine")
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str]:
    import numpy
    import scipy

    from semc import __version__

    return {"semc": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__}


def demo_run(options: DemoOptions, *, out=None) -> int:
    """Run the demo; returns 0 when every exposure was stored, 1 otherwise."""
    out = out or sys.stdout
    fresh = options.home is None
    home = Path(tempfile.mkdtemp(prefix="semc-demo-")) if fresh else options.home.expanduser().resolve()
    keep = options.keep or not fresh
    try:
        return _demo(options, home=home, keep=keep, out=out)
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def _demo(options: DemoOptions, *, home: Path, keep: bool, out) -> int:
    overridden = environment_prepare(home)
    from semc.cli import django_setup

    django_setup()
    from semc.commands.init_databases import databases_init
    from semc.demo.accuracy import session_report
    from semc.demo.collect import records_collect
    from semc.demo.display import next_steps_text, summary_text

    databases_init()  # what `semc init` does (idempotent)
    session = _session_name(options)
    logs = home / "demo" / session
    logs.mkdir(parents=True, exist_ok=True)
    rundir = home / "runs" / session / "run1"
    commands = _commands(options, session=session, rundir=rundir)
    out.write(_header(options, home=home, session=session, commands=commands) + "\n")
    out.flush()
    started = time.monotonic()
    watch = _Watch(options, session=session, rundir=rundir, logs=logs)
    display = _Display(out)
    try:
        watch.run(display, started)
    finally:
        display.close()
        watch.close()
    wall = time.monotonic() - started
    for problem in watch.problems:
        out.write(f"semc demo: {problem}\n")
    records = records_collect(session_name=session, preset=DEMO_PRESET, rundir=str(rundir))
    report = session_report(session=session, planned=options.exposures, records=records, wall_s=wall)
    from semc.simulation.session import CAMERA_PRESETS

    camera = CAMERA_PRESETS[options.camera]
    description = (f"{options.exposures} exposures, camera {options.camera} {camera.shape[1]}x{camera.shape[0]}, "
                   f"{camera.n_frames} frames, {options.n_workers} worker(s)")
    summary_path = logs / "summary.json"
    summary_path.write_text(json.dumps({
        "report": report.as_dict(), "options": {**asdict(options), "home": str(home)}, "rundir": str(rundir),
        "commands": {role: ["semc", *argv] for role, argv in commands.items()}, "problems": watch.problems,
        "versions": _versions(), "machine": {"host": platform.node(), "cpus": os.cpu_count()},
    }, indent=1, default=str) + "\n")
    out.write("\n" + summary_text(report, description=description) + "\n\n")
    out.write(next_steps_text(home=str(home), kept=keep, web_url=WEB_URL,
                              summary_path=str(summary_path) if keep else None, overridden=overridden) + "\n")
    out.flush()
    ok = not watch.problems and report.stored == options.exposures and report.failed == 0
    return 0 if ok else 1
