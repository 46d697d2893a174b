"""SEMC's own tables (database alias ``default``, SEMC's state database).

These are migrated by ``semc init`` in every mode: they never touch the
facility's Leginon/Appion databases. A :class:`ProcessingRun` records how a run
was made (parameters as saved, engine and version, host); an
:class:`ExposureStep` is the ledger line of one exposure in one step of one run.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

__all__ = ["TimestampedModel", "ProcessingRun", "ExposureStep", "Step", "StepState"]


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Step(models.TextChoices):
    MOTION_CORRECTION = "motioncorrection", "motion correction"
    CTF_ESTIMATION = "ctfestimation", "CTF estimation"


class StepState(models.TextChoices):
    PENDING = "pending"
    DEFERRED = "deferred"  # input missing or still being written: waits without spending an attempt
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # will be retried after its back-off
    QUARANTINED = "quarantined"  # failed too often: needs a person (requeue from the admin)


class ProcessingRun(TimestampedModel):
    """One run of one or more steps over a session, as the daemon (or a classic script) started it."""

    class Status(models.TextChoices):
        RUNNING = "running"
        STOPPED = "stopped"
        FAILED = "failed"

    name = models.CharField(max_length=255, help_text="run name (classic --runname, e.g. ddstack1)")
    rundir = models.CharField(max_length=1024, help_text="absolute run directory, no trailing slash")
    session_id = models.IntegerField(db_index=True, help_text="SessionData.DEF_id")
    session_name = models.CharField(max_length=255, db_index=True)
    project_id = models.IntegerField(null=True, blank=True)
    preset = models.CharField(max_length=255, blank=True)
    steps = models.JSONField(default=list, help_text="ordered list of step names")
    engines = models.JSONField(default=dict, help_text="step -> engine name (builtin, motioncor2, ...)")
    engine_versions = models.JSONField(default=dict, help_text="step -> detected program version")
    parameters = models.JSONField(default=dict, help_text="the run's frozen parameters, as saved")
    command_line = models.JSONField(default=list, help_text="argv that started the run")
    host = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    slurm_job_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    appion_job_id = models.IntegerField(null=True, blank=True, help_text="ApAppionJobData.DEF_id")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rundir"], name="semc_run_unique_rundir"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.session_name})"


class ExposureStep(TimestampedModel):
    """The ledger line of one exposure in one step of one run: state, attempts, timings."""

    run = models.ForeignKey(ProcessingRun, on_delete=models.CASCADE, related_name="ledger")
    exposure_id = models.IntegerField(help_text="AcquisitionImageData.DEF_id of the raw exposure")
    filename = models.CharField(max_length=512, blank=True, db_index=True)
    step = models.CharField(max_length=32, choices=Step.choices)
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=64, blank=True, help_text="exception class of the last error")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="earliest retry (back-off)")
    lease_owner = models.CharField(max_length=255, blank=True, help_text="host:pid:attempt holding the lease")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True, help_text="the exposure row's DEF_timestamp")
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    stored_at = models.DateTimeField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    durations = models.JSONField(default=dict, blank=True, help_text="stage -> seconds (load, align, ctf, store)")
    result = models.JSONField(default=dict, blank=True, help_text="small summary (drift, defocus, ...)")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "exposure_id", "step"], name="semc_ledger_unique"),
            models.CheckConstraint(
                condition=~Q(state="done") | Q(stored_at__isnull=False),
                name="semc_ledger_done_has_stored_at",
            ),
        ]
        indexes = [models.Index(fields=["run", "step", "state"])]
        ordering = ["-exposure_id"]
        verbose_name = "exposure step"

    def __str__(self) -> str:
        return f"{self.step} of exposure {self.exposure_id}: {self.state}"

    @property
    def latency_s(self) -> float | None:
        """Seconds from arrival (the exposure row) to stored."""
        if self.arrived_at and self.stored_at:
            return (self.stored_at - self.arrived_at).total_seconds()
        return None
