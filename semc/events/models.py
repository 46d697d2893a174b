"""The events app's tables (SEMC's state database, alias ``default``).

* :class:`OutboxMessage`: every message, written in the same transaction as the ledger line of the
  result it reports, published later, in order, by the publisher (semc.events.publisher).
* :class:`Notification`: e-mails and webhook calls for session verdicts, written in the same transaction
  as the verdict's message and sent by the publisher with retries.
* :class:`ExposureQC` / :class:`SessionQC`: the QC verdict of each exposure, and each run's session
  verdict with the monitor's state (so a restarted daemon carries on with the same baselines).
* :class:`PublisherLease`: one publisher at a time drains the outbox (a daemon's thread or
  ``semc events publish``), so that messages leave in order.
"""

from __future__ import annotations

from django.db import models

from semc.models.semc import ProcessingRun

__all__ = ["ExposureQC", "Notification", "OutboxMessage", "PublisherLease", "SessionQC"]


class OutboxMessage(models.Model):
    run = models.ForeignKey(ProcessingRun, on_delete=models.CASCADE, related_name="outbox")
    seq = models.PositiveIntegerField(help_text="per run, from 1, in commit order")
    message_id = models.CharField(max_length=36, unique=True, help_text="the envelope's id (uuid)")
    type = models.CharField(max_length=64, db_index=True)
    routing_key = models.CharField(max_length=255)
    body = models.TextField(help_text="the message exactly as published (JSON)")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="semc_outbox_run_seq")]
        ordering = ["id"]
        verbose_name = "outbox message"

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} of run {self.run_id}"


class Notification(models.Model):
    class Channel(models.TextChoices):
        MAIL = "mail"
        WEBHOOK = "webhook"

    run = models.ForeignKey(ProcessingRun, on_delete=models.CASCADE, related_name="notifications")
    message_id = models.CharField(max_length=36, help_text="the verdict message it announces")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message_id", "channel"], name="semc_notification_once")]
        ordering = ["id"]


class ExposureQC(models.Model):
    run = models.ForeignKey(ProcessingRun, on_delete=models.CASCADE, related_name="exposure_qc")
    exposure_id = models.IntegerField(help_text="AcquisitionImageData.DEF_id of the raw exposure")
    filename = models.CharField(max_length=512, blank=True)
    keep = models.BooleanField()
    findings = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    assessed = models.BooleanField(default=False, help_text="written as classic ApAssessmentData rows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "exposure_id"], name="semc_exposure_qc_once")]
        ordering = ["-exposure_id"]
        verbose_name = "exposure QC verdict"


class SessionQC(models.Model):
    class Verdict(models.TextChoices):
        GOOD = "GOOD"
        STOP_AT_END = "STOP_AT_END"
        STOP_NOW = "STOP_NOW"

    run = models.OneToOneField(ProcessingRun, on_delete=models.CASCADE, related_name="session_qc")
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True,
                               help_text="blank until the baseline exists")
    reason = models.TextField(blank=True)
    findings = models.JSONField(default=list, blank=True)
    exposures_seen = models.PositiveIntegerField(default=0)
    state = models.JSONField(default=dict, blank=True, help_text="the monitor's state (baselines, charts)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "session QC verdict"


class PublisherLease(models.Model):
    name = models.CharField(max_length=64, unique=True)
    owner = models.CharField(max_length=255)
    expires_at = models.DateTimeField()
