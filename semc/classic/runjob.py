"""``runJob.py``: submit a classic Appion command to Slurm the way myamiweb expects (compat §4.4).

myamiweb runs ``runJob.py <appion wrapper> <script>.py --flags... --ppn=1 --nodes=1 --walltime=120
--queue=q --jobid=N`` on the processing host and takes **the trailing integer of stdout** as the
cluster job id. This command:

1. drops everything before the script (the site's classic wrapper: SEMC's scripts are on PATH) and
   strips the scheduler flags (``--ppn --nodes --walltime --cput --queue --mem``); ``--jobid`` and
   ``--jobtype`` flow on to the script;
2. renders the batch script ``<rundir>/<runname>.appionsub.job`` from a Jinja2 template (the
   package's ``templates/slurm_job.sh.j2``, or the site's: ``$SEMC_RUNJOB_TEMPLATE``), with
   resources from the flags and from Dask's configuration ``semc.runjob`` (partition, cpus, memory,
   gpus, walltime, extra ``#SBATCH`` headers, pre-exec lines);
3. appends the command to ``<rundir>/run_commands.log`` (classic's record of what was run);
4. submits with ``sbatch <job file>`` (an argument list, never a shell string), records the Slurm
   id on the job row (``clusterjobid``; status ``Q`` unless the job already set one; ``jobtype``
   untouched) and prints the id as the last line of stdout. The script sets ``R`` when it starts and
   ``D``/``E`` when it ends; the batch script sets ``E`` if the script could not even start.

Exit status: 0 submitted, 1 submission failed (message on stderr; the job row is marked ``E``),
2 bad command line.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from semc.base.errors import ConfigurationError, ExternalProgramFailed, ProcessingError
from semc.classic.options import SCHEDULER_FLAGS, ClassicUsageError

__all__ = [
    "CLASSIC_SCRIPTS",
    "RUNJOB_DEFAULTS",
    "RunJobRequest",
    "batch_script_render",
    "job_id_from_sbatch",
    "main",
    "request_from_argv",
    "submit",
]

#: classic script name -> the module whose main() runs it (used when the name is not on PATH)
CLASSIC_SCRIPTS = {"makeDDAlignMotionCor2_UCSF.py": "semc.classic.makeddalign",
                   "makeDDAlignMotionCor3.py": "semc.classic.makeddalign:main_motioncor3",
                   "ctffind4.py": "semc.classic.ctffind4", "ctffind5.py": "semc.classic.ctffind4:main_ctffind5"}
#: resources when neither the command line nor Dask's ``semc.runjob`` configuration says
RUNJOB_DEFAULTS = {"partition": None, "cpus": None, "mem": None, "gpus": 0, "walltime_minutes": None,
                   "extra_headers": [], "pre_exec": [], "sbatch": "sbatch", "timeout_s": 60}
TEMPLATE_ENV = "SEMC_RUNJOB_TEMPLATE"
_VALUE_FLAGS = ("--rundir", "--outdir", "-R", "--runname", "-n", "--jobid", "--jobtype", "--projectid", "-p")


@dataclass(frozen=True, slots=True)
class RunJobRequest:
    """A parsed runJob.py command line."""

    script: str  # as given (a name or a path)
    script_argv: tuple[str, ...]  # the script's flags, scheduler flags stripped
    dropped: tuple[str, ...]  # the wrapper tokens before the script
    scheduler: dict[str, str] = field(default_factory=dict)  # flag name (no dashes) -> value
    rundir: str = ""
    runname: str = ""
    jobid: int | None = None
    jobtype: str | None = None
    projectid: int | None = None


def _flag_value(tokens: Sequence[str], names: Sequence[str]) -> str | None:
    """The last value of any of ``names`` in ``--name=value``, ``-R=value`` or ``--name value`` form."""
    found = None
    for index, token in enumerate(tokens):
        name, eq, value = token.partition("=")
        if name in names:
            if eq:
                found = value
            elif index + 1 < len(tokens) and not tokens[index + 1].startswith("-"):
                found = tokens[index + 1]
    return found


def _int_or_none(text: str | None, flag: str) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise ClassicUsageError(f"{flag} must be a number, got {text!r}")
    return int(text)


def request_from_argv(argv: Sequence[str]) -> RunJobRequest:
    """Split a runJob.py command line (pure).

    Raises
    ------
    ClassicUsageError
        No script (a ``*.py`` token), or no ``--rundir``.
    """
    tokens = list(argv)
    start = next((i for i, t in enumerate(tokens) if not t.startswith("-") and t.endswith(".py")), None)
    if start is None:
        raise ClassicUsageError("no Appion script (<name>.py) in the command line")
    script, rest = tokens[start], tokens[start + 1:]
    kept, scheduler, skip = [], {}, False
    for index, token in enumerate(rest):
        if skip:
            skip = False
            continue
        name, eq, value = token.partition("=")
        if name in SCHEDULER_FLAGS:
            if not eq and index + 1 < len(rest) and not rest[index + 1].startswith("-"):
                value, skip = rest[index + 1], True
            scheduler[name[2:]] = value
            continue
        kept.append(token)
    rundir = _flag_value(kept, ("--rundir", "--outdir", "-R"))
    if not rundir:
        raise ClassicUsageError("the command has no --rundir (needed for the job files)")
    rundir = os.path.normpath(os.path.abspath(rundir))
    runname = _flag_value(kept, ("--runname", "-n")) or os.path.basename(rundir)
    return RunJobRequest(script=script, script_argv=tuple(kept), dropped=tuple(tokens[:start]), scheduler=scheduler,
                         rundir=rundir, runname=runname, jobid=_int_or_none(_flag_value(kept, ("--jobid",)), "--jobid"),
                         jobtype=_flag_value(kept, ("--jobtype",)),
                         projectid=_int_or_none(_flag_value(kept, ("--projectid", "-p")), "--projectid"))


def _walltime(minutes: str | int | None) -> str | None:
    """``--walltime`` minutes (classic's unit at SEMC) as Slurm's ``H:MM:SS``."""
    if minutes in (None, ""):
        return None
    total = int(float(minutes))
    if total <= 0:
        raise ClassicUsageError(f"--walltime must be > 0 minutes, got {minutes}")
    return f"{total // 60}:{total % 60:02d}:00"


def _command_argv(request: RunJobRequest) -> list[str]:
    """The script's argv as the batch script runs it: its name on PATH, else ``python -m <module>``."""
    name = os.path.basename(request.script)
    if shutil.which(name) is not None or name not in CLASSIC_SCRIPTS:
        return [name if shutil.which(name) else request.script, *request.script_argv]
    module, _, function = CLASSIC_SCRIPTS[name].partition(":")
    runner = ["-c", f"import sys; from {module} import {function or 'main'} as m; sys.exit(m())"]
    return [sys.executable, *runner, *request.script_argv]


def batch_script_render(request: RunJobRequest, *, config: Mapping | None = None, template_text: str | None = None,
                        now: dt.datetime | None = None) -> str:
    """The batch script's text (pure given the template and configuration)."""
    import jinja2

    config = {**RUNJOB_DEFAULTS, **(config or {})}
    if template_text is None:
        template_text = (Path(__file__).parent / "templates" / "slurm_job.sh.j2").read_text()
    s = request.scheduler
    status = [sys.executable, "-m", "semc.classic.runjob", "--set-status", str(request.jobid or 0)]
    if request.projectid is not None:
        status += ["--projectid", str(request.projectid)]
    values = {
        "job_name": f"{request.runname}.appionsub", "rundir": request.rundir, "runname": request.runname,
        "log_path": os.path.join(request.rundir, f"{request.runname}.appionsub.log"),
        "command": shlex.join(_command_argv(request)), "command_argv": _command_argv(request),
        "jobid": request.jobid, "jobtype": request.jobtype, "projectid": request.projectid,
        "partition": s.get("queue") or config["partition"], "nodes": int(s.get("nodes") or 1),
        "cpus": int(s.get("ppn") or config["cpus"] or 1), "mem": s.get("mem") or config["mem"],
        "gpus": int(config["gpus"] or 0),
        "walltime": _walltime(s.get("walltime") or config["walltime_minutes"]),
        "extra_headers": list(config["extra_headers"]), "pre_exec": list(config["pre_exec"]),
        "python": sys.executable, "status_command": shlex.join(status),
        "date": f"{now or dt.datetime.now():%Y-%m-%d %H:%M:%S}",
    }
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     autoescape=False)
    return environment.from_string(template_text).render(**values)


def job_id_from_sbatch(output: str) -> int:
    """The job id from sbatch's ``Submitted batch job N`` (or ``--parsable``'s ``N[;cluster]``).

    Raises
    ------
    ExternalProgramFailed
        When the output holds no job id.
    """
    match = re.search(r"Submitted batch job (\d+)", output) or re.search(r"^\s*(\d+)(;\S+)?\s*$", output, re.MULTILINE)
    if match is None:
        raise ExternalProgramFailed(f"sbatch printed no job id: {output.strip()[-300:]!r}", program="sbatch")
    return int(match.group(1))


def _config() -> dict:
    import dask

    return dict(dask.config.get("semc.runjob", default={}) or {})


def _template_text(env: Mapping[str, str]) -> str | None:
    path = env.get(TEMPLATE_ENV)
    if not path:
        return None
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the runJob template {path}: {exc}", key=TEMPLATE_ENV) from None


def commands_log_append(request: RunJobRequest, argv: Sequence[str], now: dt.datetime | None = None) -> Path:
    """Append the full command to ``<rundir>/run_commands.log`` (timestamp, note, command, separator)."""
    path = Path(request.rundir) / "run_commands.log"
    note = f"job {request.jobid}" if request.jobid else "no job row"
    with open(path, "a") as handle:
        handle.write(f"{now or dt.datetime.now():%Y-%m-%d %H:%M:%S}\n# runJob.py (SEMC), {note}\n"
                     f"# script: {request.script}\n{shlex.join(['runJob.py', *argv])}\n{'-' * 40}\n")
    return path


def submit(request: RunJobRequest, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Write the job file, record the command, run sbatch; returns the Slurm job id."""
    from semc.base.external import run

    env = os.environ if env is None else env
    config = {**RUNJOB_DEFAULTS, **_config()}
    os.makedirs(request.rundir, exist_ok=True)
    job_file = Path(request.rundir) / f"{request.runname}.appionsub.job"
    tmp = job_file.with_name(f".{job_file.name}.tmp")
    tmp.write_text(batch_script_render(request, config=config, template_text=_template_text(env)))
    os.replace(tmp, job_file)
    commands_log_append(request, argv)
    done = run([config["sbatch"], str(job_file)], cwd=request.rundir, timeout_s=float(config["timeout_s"]),
               log_path=Path(request.rundir) / f"{request.runname}.sbatch.log", program="sbatch")
    return job_id_from_sbatch(done.stdout + "\n" + (done.stderr or ""))


def _job_row_update(request: RunJobRequest, *, clusterjobid: int | None, status: str | None) -> None:
    """Record the Slurm id (and Q unless the job already set a letter) on myamiweb's row; jobtype untouched."""
    if not request.jobid:
        return
    from semc.cli import django_setup

    django_setup()
    from semc import models as m
    from semc.models.databases import appion_alias_for_project
    from semc.models.routers import current_appion_alias

    if request.projectid is not None:
        current_appion_alias.set(appion_alias_for_project(request.projectid))
    rows = m.ApAppionJobData.objects.filter(pk=request.jobid)
    if clusterjobid is not None:
        rows.update(clusterjobid=clusterjobid)
    if status == "Q":
        rows.filter(status__isnull=True).update(status="Q")
        rows.filter(status="").update(status="Q")
    elif status is not None:
        rows.exclude(status__in=["D", "A"]).update(status=status)


def _set_status(argv: Sequence[str]) -> int:
    """``runJob.py --set-status JOBID [--projectid N] LETTER``: used by the batch script on a failed start
    (classic's ``updateAppionDB.py``); D and A are never overwritten."""
    import argparse

    parser = argparse.ArgumentParser(prog="runJob.py --set-status", exit_on_error=False)
    parser.add_argument("jobid", type=int)
    parser.add_argument("--projectid", type=int, default=None)
    parser.add_argument("letter", choices=("Q", "R", "D", "E", "A", "U"))
    try:
        args = parser.parse_args(list(argv))
    except argparse.ArgumentError as exc:
        raise ClassicUsageError(str(exc)) from None
    _job_row_update(RunJobRequest(script="", script_argv=(), dropped=(), jobid=args.jobid, projectid=args.projectid),
                    clusterjobid=None, status=args.letter)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``runJob.py``: prints the numeric Slurm job id as the last line of stdout."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    try:
        if argv[:1] == ["--set-status"]:
            return _set_status(argv[1:])
        request = request_from_argv(argv)
    except (ClassicUsageError, ValueError, IndexError) as exc:
        print(f"runJob.py: error: {exc}", file=sys.stderr)
        return 2
    try:
        job_id = submit(request, argv)
    except ProcessingError as exc:
        print(f"runJob.py: error: {exc}", file=sys.stderr)
        _job_row_update(request, clusterjobid=None, status="E")
        return 1
    try:
        _job_row_update(request, clusterjobid=job_id, status="Q")
    except ProcessingError as exc:  # the job is queued: myamiweb still gets its id
        print(f"runJob.py: warning: job row {request.jobid} not updated: {exc}", file=sys.stderr)
    print(job_id, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
