"""Writing shared state: one generic update helper, and one-line entity functions on top.

Only the controller process (and the admin) calls these; Dask tasks never do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import models, transaction

__all__ = ["model_update", "exposure_steps_requeue", "path_normalise", "path_get_or_create", "appion_job_start",
           "appion_job_status_set", "appion_job_aborted", "script_run_record"]

if TYPE_CHECKING:
    from semc.models.appion import ApAppionJobData, ApPathData, ScriptProgramRun


def model_update(*, instance: models.Model, fields: Iterable[str], data: dict[str, Any]) -> tuple[models.Model, bool]:
    """Set the given fields from ``data`` where they differ, validate, and save only those.

    Returns the instance and whether anything changed.
    """
    changed = []
    for field in fields:
        if field in data and getattr(instance, field) != data[field]:
            setattr(instance, field, data[field])
            changed.append(field)
    if changed:
        instance.full_clean(exclude=[f.name for f in instance._meta.fields if f.name not in changed])
        instance.save(update_fields=changed + (["updated_at"] if hasattr(instance, "updated_at") else []))
    return instance, bool(changed)


def exposure_steps_requeue(queryset: models.QuerySet) -> int:
    """Put failed or quarantined ledger lines back to pending, with a fresh attempt budget."""
    from semc.models.semc import StepState

    with transaction.atomic(using=queryset.db):
        return queryset.filter(state__in=[StepState.FAILED, StepState.QUARANTINED]).update(
            state=StepState.PENDING, attempts=0, next_attempt_at=None, lease_owner="", lease_expires_at=None
        )


# --- classic Appion run provenance (controller only) -------------------------------------------

def path_normalise(path: str | os.PathLike) -> str:
    """Absolute, normalised, no trailing slash: the one form stored in ApPathData (defect D5)."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def path_get_or_create(path: str | os.PathLike) -> "ApPathData":
    """The ApPathData row of a directory (the oldest one when real databases hold duplicates)."""
    from semc.models.appion import ApPathData

    normalised = path_normalise(path)
    row = ApPathData.objects.filter(path=normalised).order_by("id").first()
    return row or ApPathData.objects.create(path=normalised)


def appion_job_start(*, job_id: int | None, rundir: str, runname: str, jobtype: str, session_id: int,
                     user: str, cluster: str, clusterjobid: int | None = None) -> "ApAppionJobData":
    """Mark the run's job running: update the row myamiweb created (``--jobid``), never its ``jobtype``;
    or create one when the daemon was not launched through the web (compat §6.6)."""
    from semc.models.appion import ApAppionJobData

    path = path_get_or_create(rundir)
    values = {"name": f"{runname}.appionsub.job", "path": path, "clusterpath": path, "session_id": session_id,
              "user": user, "cluster": cluster, "status": ApAppionJobData.Status.RUNNING}
    if clusterjobid is not None:
        values["clusterjobid"] = clusterjobid
    if job_id:
        job = ApAppionJobData.objects.filter(pk=job_id).first()
        if job is not None:
            for key, value in values.items():  # every requested column, NULL or not (defect D17)
                setattr(job, key, value)
            job.save(update_fields=[*values])
            return job
    return ApAppionJobData.objects.create(jobtype=jobtype, **values)


def appion_job_status_set(job: "ApAppionJobData", status: str) -> None:
    """Set a job's status letter (R, D, E), unless the web has aborted it (A stays A)."""
    from semc.models.appion import ApAppionJobData

    ApAppionJobData.objects.filter(pk=job.pk).exclude(status=ApAppionJobData.Status.ABORTED).update(status=status)


def appion_job_aborted(job: "ApAppionJobData") -> bool:
    """Whether myamiweb has marked the job aborted (polled by the controller)."""
    from semc.models.appion import ApAppionJobData

    return ApAppionJobData.objects.filter(pk=job.pk, status=ApAppionJobData.Status.ABORTED).exists()


def script_run_record(*, program: str, runname: str, rundir: str, job: "ApAppionJobData | None",
                      parameters: Iterable[tuple[str, Any, str | None]], revision: str) -> "ScriptProgramRun":
    """Provenance rows of one run (compat §1.5 Script*): program, user, host, run and its parameters.

    ``parameters`` are (name, value, usage) with ``usage`` the real command-line spelling that
    reproduces the value (``--bin=2``, ``--no-wait``); a value without usage is not stored ([C]).
    """
    import getpass
    import platform
    import socket

    from semc.models import appion as a

    program_row, _ = a.ScriptProgramName.objects.get_or_create(name=program)
    user_row, _ = a.ScriptUserName.objects.get_or_create(name=getpass.getuser(), uid=os.getuid(), gid=os.getgid())
    host = socket.gethostname()
    host_row = a.ScriptHostName.objects.filter(name=host).order_by("id").first() or a.ScriptHostName.objects.create(
        name=host, ip=_host_ip(host), system=platform.system(), arch=platform.machine(), nproc=os.cpu_count(),
        memory=_memory_kb())
    run = a.ScriptProgramRun.objects.create(
        runname=runname, revision=revision, progname=program_row, username=user_row, hostname=host_row,
        rundir=path_get_or_create(rundir), job=job, appion_path=path_get_or_create(os.path.dirname(__file__)),
        unixshell=os.environ.get("SHELL", ""))
    for name, value, usage in parameters:
        if usage is None:
            continue
        param, _ = a.ScriptParamName.objects.get_or_create(name=name, progname=program_row)
        a.ScriptParamValue.objects.create(value=str(value), usage=usage, paramname=param, progrun=run)
    return run


def _host_ip(host: str) -> str:
    import socket

    try:
        return socket.gethostbyname(host)
    except OSError:
        return ""


def _memory_kb() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            return int(handle.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None
