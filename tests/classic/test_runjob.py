"""runJob.py: the classic stdin/stdout contract, scheduler flags stripped, the batch script from a template,
and on a real single-node Slurm: submitted, run, the numeric id printed last, the job row's letters."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semc.base.errors import ExternalProgramFailed
from semc.classic import runjob
from semc.classic.options import ClassicUsageError

WEB = ("/opt/myami/bin/appion makeDDAlignMotionCor2_UCSF.py --bin=1 --align --gpuids=0 --Patchrows=5 "
       "--Patchcols=5 --doseweight --runname=ddstack1 --rundir={rundir} --preset=enn --commit --projectid=12 "
       "--session=m25mar17a --no-rejects --continue --parallel --expid=7472 --jobtype=makeddrawframestack "
       "--ppn=2 --nodes=1 --walltime=120 --queue=preprocessing --jobid=74")


def test_the_web_command_is_split_into_wrapper_script_flags_and_scheduler_flags(tmp_path):
    rundir = tmp_path / "ddstack" / "ddstack1"
    request = runjob.request_from_argv(shlex.split(WEB.format(rundir=f"{rundir}/")))
    assert request.script == "makeDDAlignMotionCor2_UCSF.py" and request.dropped == ("/opt/myami/bin/appion",)
    assert request.scheduler == {"ppn": "2", "nodes": "1", "walltime": "120", "queue": "preprocessing"}
    assert not any(a.startswith(("--ppn", "--nodes", "--walltime", "--queue")) for a in request.script_argv)
    assert "--jobid=74" in request.script_argv and "--jobtype=makeddrawframestack" in request.script_argv
    assert (request.rundir, request.runname, request.jobid, request.projectid) == (str(rundir), "ddstack1", 74, 12)
    spaced = runjob.request_from_argv(["ctffind4.py", "-R", str(rundir), "--queue", "gpu", "--mem=8G"])
    assert spaced.scheduler == {"queue": "gpu", "mem": "8G"} and spaced.script_argv == ("-R", str(rundir))


@pytest.mark.parametrize("argv, message", [
    (["--session=s"], "no Appion script"),
    (["makeDDAlignMotionCor2_UCSF.py", "--session=s"], "no --rundir"),
    (["ctffind4.py", "--rundir=/r/x", "--jobid=abc"], "--jobid must be a number"),
])
def test_bad_command_lines_are_refused(argv, message, capsys):
    with pytest.raises(ClassicUsageError, match=message):
        runjob.request_from_argv(argv)
    assert runjob.main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_batch_script_carries_resources_from_flags_and_configuration(tmp_path):
    request = runjob.request_from_argv(shlex.split(WEB.format(rundir=tmp_path / "ddstack1")))
    text = runjob.batch_script_render(request, config={"gpus": 1, "mem": "32G", "extra_headers": ["--account=em"],
                                                       "pre_exec": ["module load cuda"]})
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for header in ("--job-name=ddstack1.appionsub", "--partition=preprocessing", "--time=2:00:00",
                   "--cpus-per-task=2", "--ntasks=1", "--nodes=1", "--mem=32G", "--gres=gpu:1", "--account=em",
                   f"--output={tmp_path / 'ddstack1' / 'ddstack1.appionsub.log'}"):
        assert f"#SBATCH {header}" in lines, header
    assert "module load cuda" in lines
    command = next(line for line in lines if "--session=m25mar17a" in line)
    argv = shlex.split(command)
    assert argv[-len(request.script_argv):] == list(request.script_argv) and "/opt/myami/bin/appion" not in argv
    assert any("--set-status 74" in line and line.rstrip().endswith("E") for line in lines)
    plain = runjob.batch_script_render(runjob.request_from_argv(["ctffind4.py", f"--rundir={tmp_path}/r"]))
    assert "--partition" not in plain and "--time" not in plain and "--set-status" not in plain
    site = runjob.batch_script_render(request, template_text="#!/bin/sh\n#PBS -q {{ partition }}\n{{ command }}\n")
    assert site.startswith("#!/bin/sh\n#PBS -q preprocessing\n") and "--session=m25mar17a" in site


def test_the_job_id_is_read_from_sbatch_output():
    assert runjob.job_id_from_sbatch("Submitted batch job 123456\n") == 123456
    assert runjob.job_id_from_sbatch("77;cluster\n") == 77
    with pytest.raises(ExternalProgramFailed, match="no job id"):
        runjob.job_id_from_sbatch("sbatch: error: invalid partition specified: nope\n")


# ---------------------------------------------------------------- a real single-node Slurm

def _slurm_state(job_id: int) -> str:
    out = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], check=False, capture_output=True,
                         text=True).stdout
    return out.strip()


def _wait_gone(job_id: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _slurm_state(job_id) not in ("", "COMPLETED", "FAILED") and time.monotonic() < deadline:
        time.sleep(1.0)
    assert _slurm_state(job_id) in ("", "COMPLETED", "FAILED"), f"job {job_id} still {_slurm_state(job_id)}"


def _test_db_environment() -> dict[str, str]:
    """The job must see this test's databases (test_<name>): SQLite files in SEMC_HOME, or MariaDB."""
    from django.conf import settings

    env = dict(os.environ)
    for key, alias in (("SEMC_DB_SEMC", "default"), ("SEMC_DB_LEGINON", "leginon"),
                       ("SEMC_DB_PROJECTS", "projects"), ("SEMC_DB_APPION", "appion")):
        name = settings.DATABASES[alias]["NAME"]
        env[key] = Path(name).stem if name.endswith(".sqlite3") else name
    return env


def _runjob(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = shutil.which("runJob.py")
    command = [exe] if exe else [sys.executable, "-m", "semc.classic.runjob"]
    return subprocess.run([*command, *argv], check=False, capture_output=True, text=True, env=env, timeout=120)


needs_slurm = pytest.mark.skipif(not (os.environ.get("SLURM_CONF") and shutil.which("sbatch")),
                                 reason="no Slurm (run scripts/slurm-up.sh, which CI does)")
PARTITION = os.environ.get("SLURM_CI_PARTITION", "debug")


def _web_job(populated, rundir: Path, jobtype: str):
    """The job row myamiweb inserts before it calls runJob.py, and the job's environment."""
    from semc import models as m

    env = _test_db_environment()
    m.ProcessingDB.objects.filter(project=populated.project).update(appiondb=env["SEMC_DB_APPION"])
    path = m.ApPathData.objects.create(path=str(rundir))
    job = m.ApAppionJobData.objects.create(path=path, clusterpath=path, name=f"{rundir.name}.appionsub.job",
                                           jobtype=jobtype, session_id=populated.session.pk, user="jdoe",
                                           cluster="localhost")
    return job, env


def _submitted(argv: list[str], env: dict[str, str], job) -> int:
    """runJob.py's exit status, its last stdout line (the numeric id), and the id on the job row."""
    done = _runjob(argv, env)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.isdigit(), done.stdout
    job.refresh_from_db()
    assert job.clusterjobid == int(last) and job.status in ("Q", "R", "D", "E")
    return int(last)


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.django_db(databases="__all__", transaction=True)
@needs_slurm
def test_runjob_submits_to_slurm_prints_the_id_and_the_job_row_ends_done(tmp_path, movie_session):
    from semc import models as m

    rundir = tmp_path / "appion" / "ddstack" / "ddstack1"
    job, env = _web_job(movie_session, rundir, "makeddrawframestack")
    argv = ["/opt/myami/bin/appion", "makeDDAlignMotionCor2_UCSF.py", "--session=26nov23a", "--preset=enn",
            f"--rundir={rundir}", "--runname=ddstack1", "--no-wait", "--align", "--doseweight", "--Iter=5",
            "--Patchrows=0", "--Patchcols=0", f"--projectid={movie_session.project.pk}", "--no-rejects",
            "--cluster=local", "--nproc=1", "--jobtype=makeddrawframestack", f"--jobid={job.pk}", "--ppn=1",
            "--nodes=1", "--walltime=10", f"--queue={PARTITION}"]
    slurm_id = _submitted(argv, env, job)
    _wait_gone(slurm_id, timeout_s=240)
    job.refresh_from_db()
    log = (rundir / "ddstack1.appionsub.log").read_text()
    assert (job.status, job.jobtype, job.clusterjobid) == ("D", "makeddrawframestack", slurm_id), log
    assert m.ApDDAlignImagePairData.objects.count() == 2 * len(movie_session.images)
    assert "makeDDAlignMotionCor2_UCSF.py" in (rundir / "run_commands.log").read_text()
    assert "--queue" not in (rundir / "ddstack1.appionsub.job").read_text().split("#SBATCH --chdir")[1]


@pytest.mark.slurm
@pytest.mark.django_db(databases="__all__", transaction=True)
@needs_slurm
def test_a_script_that_cannot_start_leaves_its_job_row_in_error(tmp_path, movie_session):
    rundir = tmp_path / "appion" / "ctf" / "ctffind4run1"
    job, env = _web_job(movie_session, rundir, "ctfestimate")
    argv = ["ctffind4.py", "--session=nosuchsession", f"--rundir={rundir}", f"--jobid={job.pk}",
            f"--projectid={movie_session.project.pk}", "--walltime=5", f"--queue={PARTITION}"]
    slurm_id = _submitted(argv, env, job)
    _wait_gone(slurm_id, timeout_s=120)
    job.refresh_from_db()
    log = (rundir / "ctffind4run1.appionsub.log").read_text()
    assert (job.status, job.jobtype, job.clusterjobid) == ("E", "ctfestimate", slurm_id), log
    assert "nosuchsession" in log
