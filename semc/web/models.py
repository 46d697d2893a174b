"""The web app's own tables (database alias ``default``): API tokens, control requests, supervised loops.

A control request (start, stop or resume processing of a session) is only *recorded* by
the web process; ``semc supervise`` picks it up, carries it out on the session's
:class:`SupervisedSession` (one ``semc loop`` child process per session) and writes back
what it did. The web process never starts work.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

__all__ = ["ApiToken", "ControlRequest", "SupervisedSession"]


class ApiToken(models.Model):
    """A per-user API token. Only its SHA-256 digest is stored; the token is shown once, at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    label = models.CharField(max_length=100, blank=True, help_text="what the token is for")
    prefix = models.CharField(max_length=16, db_index=True, help_text="public part of the token, for look-up")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the whole token (hex)")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class ControlRequest(models.Model):
    """A start, stop or resume request for one session, as recorded by the API."""

    class Action(models.TextChoices):
        START = "start"
        STOP = "stop"
        RESUME = "resume"

    class State(models.TextChoices):
        PENDING = "pending"  # recorded, not yet seen by the supervisor
        DONE = "done"  # carried out (a loop started, or was asked to stop)
        REFUSED = "refused"  # the supervisor could not carry it out (message says why)

    action = models.CharField(max_length=16, choices=Action.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    project_id = models.IntegerField()
    session_id = models.IntegerField(db_index=True, help_text="SessionData.DEF_id")
    session_name = models.CharField(max_length=255)
    requested_by = models.CharField(max_length=150, help_text="user name of the token's owner")
    parameters = models.JSONField(default=dict, blank=True, help_text="validated processing parameters")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ("created_at", "id")
        verbose_name = "control request"

    def __str__(self) -> str:
        return f"{self.action} {self.session_name}: {self.state}"


class SupervisedSession(models.Model):
    """The supervisor's record of one session: what is wanted and the ``semc loop`` child carrying it out."""

    class Desired(models.TextChoices):
        RUNNING = "running"
        STOPPED = "stopped"

    class State(models.TextChoices):
        STARTING = "starting"  # wanted running, no child yet (or restarting after a failure)
        RUNNING = "running"
        STOPPING = "stopping"  # SIGTERM sent, child finishing its work in flight
        STOPPED = "stopped"
        FAILED = "failed"  # the child kept failing; needs a person (resume to try again)

    session_id = models.IntegerField(unique=True, help_text="SessionData.DEF_id")
    session_name = models.CharField(max_length=255)
    project_id = models.IntegerField()
    desired = models.CharField(max_length=16, choices=Desired.choices, default=Desired.STOPPED)
    state = models.CharField(max_length=16, choices=State.choices, default=State.STOPPED)
    parameters = models.JSONField(default=dict, blank=True, help_text="parameters of the last start")
    rundir = models.CharField(max_length=1024, blank=True)
    host = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="when the current child started")
    stopped_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="consecutive failed starts")
    message = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("session_id",)
        verbose_name = "supervised session"

    def __str__(self) -> str:
        return f"{self.session_name}: {self.state} (wanted {self.desired})"
