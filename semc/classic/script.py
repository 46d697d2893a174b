"""What every classic script does around its own flags: resolve the run, record it, run the daemon.

A script is a `ScriptSpec`, a parser builder and a pure ``params_build(args, context)`` that returns
the frozen `LoopParams`, the image selection and the per-exposure adjustment. `script_main` parses
(usage errors exit 2 with the flag named), resolves the session, project, run directory and run
name against the database (`RunContext`), writes ``<rundir>/<function>.log`` as classic did,
records the classic provenance rows (ApAppionJobData, Script*) unless ``--no-commit``, and runs
`classic_loop_run`. Processing errors exit 1 with the message; a failure after the job row was
marked running marks it ``E``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from semc.base.errors import ProcessingError
from semc.classic.options import (
    ClassicArgs,
    ClassicParser,
    ClassicUsageError,
    no_effect_report,
    rundir_default,
)
from semc.classic.selection import ImageSelection

__all__ = [
    "RunContext",
    "ScriptSpec",
    "command_log_write",
    "loop_values",
    "param_usages",
    "run_identity",
    "script_main",
    "selection_from_args",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """A classic script: its name, function name (ScriptProgramName, ``<function>.log``), processing
    directory under the session's appion directory, default job type and the daemon steps it runs."""

    prog: str
    function: str
    process_dir: str
    jobtype: str
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunContext:
    """What the database says about the run, resolved once before the parameters are built."""

    session_name: str
    session_id: int
    project_id: int | None
    rundir: str
    runname: str


def run_identity(args: ClassicArgs, *, spec: ScriptSpec, session_name: str, image_path: str | None,
                 now: dt.datetime | None = None) -> tuple[str, str]:
    """(absolute run directory, run name) by classic rules: the run name defaults to the run directory's
    base name (else a timestamp), the run directory to the session's appion directory; they must agree.

    Raises
    ------
    ClassicUsageError
        A reserved run name, or a run directory whose base name is not the run name.
    """
    from semc.classic.options import runname_default

    rundir, runname = args["rundir"], args["runname"]
    if rundir:
        rundir = os.path.normpath(os.path.abspath(rundir))  # once, at start-up (defect D5)
    runname = runname or (os.path.basename(rundir) if rundir else runname_default(now))
    if runname in ("templates", "models") or "/" in runname or runname in (".", ".."):
        raise ClassicUsageError(f"--runname {runname!r} is not allowed")
    if not rundir:
        rundir = rundir_default(image_path or "", session=session_name, process_dir=spec.process_dir,
                                runname=runname)
    if os.path.basename(rundir) != runname:
        raise ClassicUsageError(f"--runname {runname!r} must be the base name of --rundir {rundir!r}")
    return rundir, runname


def selection_from_args(args: ClassicArgs) -> ImageSelection:
    names = args["mrcnames"]
    return ImageSelection(
        filenames=tuple(n.strip() for n in names.split(",") if n.strip()) if names is not None else None,
        best_only=bool(args["bestimages"]), start_id=args["startimgid"], end_id=args["endimgid"])


def loop_values(args: ClassicArgs, *, spec: ScriptSpec, context: RunContext) -> dict[str, Any]:
    """`LoopParams` keyword arguments from the classic global and loop flags (pure).

    ``--no-rejects`` has its classic meaning: *skip* rejected images (``apply_rejects``); ``--mrclist``
    and ``--limit`` never wait, as classic did.
    """
    mrclist = args["mrcnames"] is not None
    return {
        "session": context.session_name, "preset": None if mrclist else args["preset"], "steps": spec.steps,
        "rundir": context.rundir, "runname": context.runname, "command_line": (spec.prog, *args.argv),
        "parameters": {"classic": {k: v for k, v in args.values.items() if v is not None}, "script": spec.prog,
                    "alignlabel": args.values.get("alignlabel", "a")},
        "wait": bool(args["wait"]) and not mrclist and args["limit"] is None,
        "poll_interval_s": args["poll_interval"], "max_in_flight": args["max_in_flight"],
        "max_attempts": args["max_attempts"], "reverse": bool(args["reverse"]), "limit": args["limit"],
        "tilt_mode": args["tiltangle"], "apply_rejects": bool(args["norejects"]), "project_id": context.project_id,
        "job_id": args["jobid"], "jobtype": args["jobtype"] or spec.jobtype, "commit": bool(args["commit"])}


# --- resolution against the database (controller process) ---------------------------------------

def _session_resolve(args: ClassicArgs):
    from semc import models as m
    from semc.base.retrieve import session_get

    name, expid = args["sessionname"], args["expid"]
    if name is None and expid is None:
        names = sorted(selection_from_args(args).names)
        if not names:
            raise ClassicUsageError("give --session, --expid or --mrclist")
        image = m.AcquisitionImageData.objects.filter(filename__in=names).select_related("session").first()
        if image is None:
            raise ClassicUsageError(f"no image named {names[0]!r} (from --mrclist) in the Leginon database")
        return image.session
    session = session_get(name if name is not None else int(expid))
    if name is not None and expid is not None and session.pk != expid:
        raise ClassicUsageError(f"--session {name} is DEF_id {session.pk}, not --expid {expid}")
    return session


def context_resolve(args: ClassicArgs, spec: ScriptSpec) -> RunContext:
    """Session (by name, id or an image of ``--mrclist``), project (must match the session's), run dir."""
    from semc.loop import _project_of_session

    if args["mrcnames"] is not None and args["preset"] is not None:
        raise ClassicUsageError("--mrclist and --preset are mutually exclusive")
    session = _session_resolve(args)
    project = _project_of_session(session.pk)
    if args["projectid"] is not None:
        if project is not None and project != args["projectid"]:
            raise ClassicUsageError(f"session {session.name} belongs to project {project}, "
                                    f"not --projectid {args['projectid']}")
        project = args["projectid"]
    rundir, runname = run_identity(args, spec=spec, session_name=session.name, image_path=session.image_path)
    return RunContext(session_name=session.name, session_id=session.pk, project_id=project, rundir=rundir,
                      runname=runname)


def param_usages(parser: ClassicParser, args: ClassicArgs) -> list[tuple[str, Any, str]]:
    """(name, value, usage) per set parameter, ``usage`` in the real command-line spelling (D27)."""
    spelled: dict[tuple[str, Any], str] = {}
    for action in parser.parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")] or action.option_strings
        if not longs or action.dest in ("help", "verbose"):
            continue
        fixed = getattr(action, "fixed", None)
        key = (action.dest, fixed if isinstance(fixed, bool) else None)
        spelled.setdefault(key, longs[0])
    out = []
    for dest, value in sorted(args.values.items()):
        if value is None:
            continue
        if isinstance(value, bool):
            option = args.given.get(dest) if dest in args.given else spelled.get((dest, value))
            if option is None:
                continue
            out.append((dest, value, option))
        elif (dest, None) in spelled:
            out.append((dest, value, f"{args.given.get(dest, spelled[(dest, None)])}={value}"))
    return out


def command_log_write(rundir: str, spec: ScriptSpec, argv: Sequence[str]) -> str:
    """Append the command to ``<rundir>/<function>.log`` under a ``[ user@host: date ]`` header ([C])."""
    import shlex

    os.makedirs(rundir, exist_ok=True)
    path = os.path.join(rundir, f"{spec.function}.log")
    with open(path, "a") as handle:
        handle.write(f"[ {getpass.getuser()}@{socket.gethostname()}: {dt.datetime.now():%a %b %d %H:%M:%S %Y} ]\n")
        handle.write(shlex.join([spec.prog, *argv]) + "\n")
    return path


def _provenance_record(parser: ClassicParser, args: ClassicArgs, spec: ScriptSpec, params,
                       context: RunContext) -> int:
    """The job row (myamiweb's ``--jobid``, else a new one, marked R) and the Script* rows; returns the job id."""
    from semc import __version__
    from semc.base.store import appion_job_start, script_run_record
    from semc.models.databases import appion_alias_for_project
    from semc.models.routers import current_appion_alias

    if params.project_id is not None:
        current_appion_alias.set(appion_alias_for_project(params.project_id))
    slurm_job = os.environ.get("SLURM_JOB_ID")
    job = appion_job_start(job_id=params.job_id, rundir=params.rundir, runname=params.runname,
                           jobtype=params.jobtype, session_id=context.session_id,
                           user=getpass.getuser(), cluster=socket.gethostname(),
                           clusterjobid=int(slurm_job) if slurm_job and slurm_job.isdigit() else None)
    script_run_record(program=spec.function, runname=params.runname, rundir=params.rundir, job=job,
                      parameters=param_usages(parser, args), revision=__version__)
    return job.pk


ParamsBuild = Callable[[ClassicArgs, RunContext], tuple[Any, ImageSelection, Any]]


def script_main(spec: ScriptSpec, parser_build: Callable[[], ClassicParser], params_build: ParamsBuild,
                argv: Sequence[str] | None = None) -> int:
    """Parse, resolve, record and run a classic script; returns the exit status (0, 1 failed, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = parser_build()
    try:
        args = parser.parse(argv)
    except ClassicUsageError as exc:
        print(f"{spec.prog}: error: {exc.message}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    from semc.cli import django_setup, logging_configure

    logging_configure(args["verbose"])
    no_effect_report(spec.prog, args, extra=["--no-continue"] if args["continue_"] is False else [])
    django_setup()
    job_id = None
    try:
        context = context_resolve(args, spec)
        params, selection, adjust = params_build(args, context)
        command_log_write(params.rundir, spec, argv)
        if params.commit:
            job_id = _provenance_record(parser, args, spec, params, context)
            params = replace(params, job_id=job_id)
        from semc.classic.controller import classic_loop_run

        return classic_loop_run(params, selection=selection, adjust=adjust, cluster_backend=args["cluster"],
                                n_workers=args["nproc"])
    except ClassicUsageError as exc:
        print(f"{spec.prog}: error: {exc.message}", file=sys.stderr)
        return 2
    except ProcessingError as exc:
        _job_failed(job_id)
        print(f"{spec.prog}: error: {exc}", file=sys.stderr)
        return 1
    except ImproperlyConfigured as exc:  # a configuration error raised while Django read its settings
        print(f"{spec.prog}: configuration error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _job_failed(job_id)
        return 130


def _job_failed(job_id: int | None) -> None:
    """A run that stopped before the controller took over its job row: mark it E (unless aborted)."""
    if job_id is None:
        return
    from semc import models as m

    m.ApAppionJobData.objects.filter(pk=job_id, status=m.ApAppionJobData.Status.RUNNING).update(
        status=m.ApAppionJobData.Status.ERROR)
