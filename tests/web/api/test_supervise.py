"""``semc supervise`` carrying out the API's requests with real ``semc loop`` children: on a simulated session
start processes what exists, stop stops the daemon (new exposures wait), resume picks them up without redoing
anything; a loop that keeps failing is restarted with a back-off and then given up; names cannot escape the
processing root."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client

from semc import models as m
from semc.base.errors import InvalidParameters
from semc.models.semc import ExposureStep, ProcessingRun, StepState
from semc.web.models import ControlRequest, SupervisedSession

ALIASES = (("default", "SEMC_DB_SEMC"), ("leginon", "SEMC_DB_LEGINON"), ("projects", "SEMC_DB_PROJECTS"),
           ("appion", "SEMC_DB_APPION"))


def _test_database_names() -> dict[str, str]:
    """Environment that points a child process at this test run's databases."""
    names = {}
    for alias, variable in ALIASES:
        settings = connections[alias].settings_dict
        name = settings["NAME"]
        names[variable] = Path(name).stem if settings["ENGINE"].endswith("sqlite3") else name
    return names


def _wait(predicate, *, timeout_s: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the supervisor exited ({process.returncode}) while waiting for {what}")
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


# --- fast: the supervisor's rules, in process -----------------------------------------------------
def test_run_directories_stay_inside_the_processing_root(tmp_path):
    from semc.commands.supervise import rundir_for

    assert rundir_for(tmp_path, "26nov23a", "ddstack_semc") == (tmp_path / "26nov23a/ddstack/ddstack_semc").resolve()
    for session, run in (("..", "r"), ("s", ".."), ("../x", "r"), ("s", "a/b"), ("s", ""), (".s", "r"),
                         ("s", "r\x00"), ("s;rm", "r")):
        with pytest.raises(InvalidParameters):
            rundir_for(tmp_path, session, run)


def test_the_loop_command_is_an_argument_list_from_checked_parameters(tmp_path):
    from semc.commands.supervise import SupervisorConfig, loop_argv
    from semc.web.api.params import StartParameters

    config = SupervisorConfig(processing_root=tmp_path, cluster="slurm", workers=None,
                              loop_args=("--max-in-flight=4",))
    params = StartParameters(preset="enn", steps=("motioncorrection",), superresolution=True)
    argv = loop_argv(config, session_id=7, project_id=3, rundir="/data/appion/s/ddstack/r1", params=params)
    assert argv[:4] == [sys.executable, "-m", "semc", "loop"]
    pairs = dict(zip(argv[4::2], argv[5::2]))
    assert pairs["--session"] == "7" and pairs["--projectid"] == "3" and pairs["--preset"] == "enn"
    assert pairs["--steps"] == "motioncorrection" and pairs["--bin"] == "2" and pairs["--cluster"] == "slurm"
    assert pairs["--runname"] == "r1" and argv[-1] == "--max-in-flight=4"


@pytest.mark.django_db(databases="__all__")
def test_requests_for_a_missing_session_are_refused_and_stop_without_a_loop_is_a_no_op(tmp_path):
    from semc.commands.supervise import Supervisor, SupervisorConfig
    from tests.factories import session_populate

    populated = session_populate(n_images=1)
    missing = ControlRequest.objects.create(action="start", project_id=1, session_id=987654, session_name="gone",
                                            requested_by="jdoe", parameters={"preset": "enn"})
    stop = ControlRequest.objects.create(action="stop", project_id=populated.project.pk,
                                         session_id=populated.session.pk, session_name="26nov23a",
                                         requested_by="jdoe")
    supervisor = Supervisor(SupervisorConfig(processing_root=tmp_path))
    assert supervisor.requests_handle() == 2
    missing.refresh_from_db(), stop.refresh_from_db()
    assert missing.state == "refused" and "987654" in missing.message
    assert stop.state == "done" and stop.message == "nothing was running"
    assert SupervisedSession.objects.get(session_id=populated.session.pk).state == "stopped"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db(databases="__all__")
def test_a_failing_loop_is_restarted_with_a_back_off_then_given_up(tmp_path, monkeypatch):
    from semc.commands.supervise import LOG_NAME, Supervisor, SupervisorConfig
    from tests.factories import session_populate

    populated = session_populate(n_images=1)
    for variable, name in _test_database_names().items():
        monkeypatch.setenv(variable, name)
    # every loop refuses --max-attempts 0 at once: a real child that exits with status 2 (argparse) or 1
    config = SupervisorConfig(processing_root=tmp_path, poll_interval_s=0.1, max_failures=2,
                              restart_backoff_s=0.5, loop_args=("--max-attempts=0",))
    supervisor = Supervisor(config)
    ControlRequest.objects.create(action="start", project_id=populated.project.pk, session_id=populated.session.pk,
                                  session_name="26nov23a", requested_by="jdoe",
                                  parameters={"preset": "enn", "runname": "r1"})
    supervisor.run_once()
    row = SupervisedSession.objects.get()
    assert row.state == "running" and row.pid and row.desired == "running"

    def given_up():
        supervisor.children_reconcile()
        return SupervisedSession.objects.get().state == "failed"

    _wait(given_up, timeout_s=60, what="the supervisor to give up")
    row = SupervisedSession.objects.get()
    assert row.failures == 2 and row.exit_code not in (0, None) and not supervisor.children
    log = (tmp_path / "26nov23a" / "ddstack" / "r1" / LOG_NAME).read_text()
    assert log.count("# semc supervise") == 2 and "max_attempts" in log
    # a failed session waits for a person: nothing restarts it
    supervisor.children_reconcile()
    assert not supervisor.children


# --- slow: the whole chain on a simulated session ------------------------------------------------
@pytest.fixture
def simulated(tmp_path):
    """A simulated session of 2 exposures whose second exposure's rows are held back (written by the test)."""
    from semc.commands.init_databases import default_project_ensure
    from semc.simulation.leginon_rows import session_rows_write_leginon
    from semc.simulation.session import SessionSpec, session_plan, session_run

    default_project_ensure()
    held = []

    def rows_writer(plan, exposure, files, *, acquired_at):
        if exposure.index < 1:
            return session_rows_write_leginon(plan, exposure, files, acquired_at=acquired_at)
        held.append((plan, exposure, files))
        return None

    plan = session_plan(SessionSpec(name="sim27a", root=tmp_path / "sessions", n_exposures=2, camera="small",
                                    seed=5))
    session_run(plan, realtime=False, rows_writer=rows_writer)
    names = _test_database_names()
    m.ProcessingDB.objects.update(appiondb=names["SEMC_DB_APPION"])  # the child's configured Appion database
    return plan, held, names


def _done(run_name: str) -> dict[int, object]:
    return dict(ExposureStep.objects.filter(run__name=run_name, step="motioncorrection", state=StepState.DONE)
                .values_list("exposure_id", "stored_at"))


@pytest.mark.slow
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_start_stop_and_resume_change_what_the_daemon_does(simulated, tmp_path):
    from semc.simulation.leginon_rows import session_rows_write_leginon
    from semc.web.auth import token_create

    _, held, names = simulated
    session = m.SessionData.objects.get(name="sim27a")
    project_id = m.ProjectExperiment.objects.get(session_id=session.pk).project_id
    _, token = token_create(username="semc-sim")
    api, auth = Client(), {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    base = f"/api/{project_id}/semc-sim/session/sim27a"
    root = tmp_path / "appion"
    env = {**os.environ, **names}
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "semc", "supervise", "--processing-root", str(root), "--poll-interval", "0.3",
         "--cluster", "local", "--workers", "1", "--stop-grace", "60", "--loop-arg=--patches=0,0",
         "--loop-arg=--poll-interval=0.3"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        started = api.post(f"{base}/start-processing?steps=motioncorrection&runname=live1", **auth)
        assert started.status_code == 202, started.content
        first = _wait(lambda: len(_done("live1")) == 1 and _done("live1"), timeout_s=240,
                      what="the first exposure", process=supervisor)
        assert api.get(base, **auth).json()["state"] == "processing"
        rundir = root / "sim27a" / "ddstack" / "live1"
        assert ProcessingRun.objects.get(name="live1").rundir == str(rundir.resolve())

        assert api.post(f"{base}/stop-processing", **auth).status_code == 202
        _wait(lambda: SupervisedSession.objects.get(session_id=session.pk).state == "stopped", timeout_s=120,
              what="the loop to stop", process=supervisor)
        assert ProcessingRun.objects.get(name="live1").status == "stopped"
        assert SupervisedSession.objects.get(session_id=session.pk).pid is None

        for held_plan, exposure, files in held:  # a new exposure arrives while stopped: nobody processes it
            session_rows_write_leginon(held_plan, exposure, files, acquired_at=time.time())
        time.sleep(3.0)
        assert _done("live1") == first
        status = api.get(base, **auth).json()
        assert (status["state"], status["raw_files"], status["processed_files"], status["backlog"]) == (
            "needs_processing", 2, 1, 1)

        assert api.post(f"{base}/resume-processing", **auth).status_code == 202
        both = _wait(lambda: len(_done("live1")) == 2 and _done("live1"), timeout_s=240,
                     what="the held-back exposure after resume", process=supervisor)
        assert {k: v for k, v in both.items() if k in first} == first  # nothing redone
        assert ExposureStep.objects.filter(run__name="live1").count() == 2
        assert m.ApDDAlignImagePairData.objects.count() == 2 * 2  # sum and dose-weighted pair per exposure
        status = api.get(base, **auth).json()
        assert status["processed_files"] == 2 and status["percent_done_total"] == 100
        assert [r["state"] for r in api.get(f"{base}/requests", **auth).json()["requests"]] == ["done"] * 3
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            _, err = supervisor.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            _, err = supervisor.communicate()
    assert supervisor.returncode == 0, err.decode()[-3000:]
    row = SupervisedSession.objects.get(session_id=session.pk)
    assert row.desired == "running" and row.pid is None  # stopped with the supervisor, wanted for its successor
    assert ProcessingRun.objects.get(name="live1").status == "stopped"


@pytest.mark.django_db(databases="__all__")
def test_a_new_supervisor_adopts_live_loops_and_never_a_reused_pid(tmp_path):
    import threading

    from semc.commands.supervise import Supervisor, SupervisorConfig

    rundir = str(tmp_path / "s1" / "ddstack" / "r1")
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    loop_like = subprocess.Popen([*sleeper, "loop", "--rundir", rundir])  # what a supervised loop's argv holds
    stranger = subprocess.Popen(sleeper)  # a process that took a dead loop's pid
    for process in (loop_like, stranger):  # reap them when they end, as init would for an orphan
        threading.Thread(target=process.wait, daemon=True).start()
    try:
        import socket

        for session_id, process in ((1, loop_like), (2, stranger)):
            SupervisedSession.objects.create(session_id=session_id, session_name=f"s{session_id}", project_id=1,
                                             desired="stopped", state="running", rundir=rundir,
                                             host=socket.gethostname(), pid=process.pid)
        supervisor = Supervisor(SupervisorConfig(processing_root=tmp_path))
        supervisor.adopt()
        assert set(supervisor.children) == {1}
        assert SupervisedSession.objects.get(session_id=2).pid is None and stranger.poll() is None
        # the adopted loop is not wanted: it is stopped, and the stranger is left alone
        supervisor.children_reconcile()
        _wait(lambda: loop_like.poll() is not None, timeout_s=20, what="the adopted loop to stop")
        supervisor.children_reconcile()
        assert SupervisedSession.objects.get(session_id=1).state == "stopped" and not supervisor.children
        assert stranger.poll() is None
    finally:
        for process in (loop_like, stranger):
            process.kill()


def test_one_supervisor_per_home(tmp_path):
    from semc.base.errors import ConfigurationError
    from semc.base.runlock import RunDirLock
    from semc.commands.supervise import Supervisor, SupervisorConfig

    with RunDirLock(tmp_path / "supervise"), pytest.raises(ConfigurationError, match="another semc supervise"):
        Supervisor(SupervisorConfig(processing_root=tmp_path)).run(once=True, lock_dir=tmp_path / "supervise")
