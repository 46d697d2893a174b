"""The controller's side of events and QC: outbox rows in the ledger's transaction, QC of each result.

The daemon (semc/loop.py) calls three hooks, each a few lines:

* ``with controller.events.stored(step, exposure_id, summary): ledger.ledger_done(...)`` — the ledger
  line turns ``done`` and, in the same transaction of SEMC's database, the result's message, the QC
  verdicts (ExposureQC, SessionQC with the monitor's state), their messages and notifications are
  written. Nothing is sent here: the publisher sends later (semc.events.publisher). The classic
  ApAssessmentData rows of the QC verdict live in the Appion database, so they are written just before
  (get-or-create, never over an existing assessment: a person's keep/reject in the viewer wins).
* ``with controller.events.failed(step, exposure_id, error): ledger.ledger_failed(...)`` — the same for a
  failed attempt (and QC counts it in the failure rate).
* ``events_attach(controller)`` at start-up (message ``started``) and ``controller.events.close(failed=)``
  at shutdown (``stopped``/``failed``; the publisher thread gets a last chance to drain).

A failure in this module never stops processing: the ledger line is kept (the events part runs in a
savepoint), the error is logged, and QC's in-memory state is rolled back with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import socket
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max

from semc.base.errors import ConfigurationError, InvalidParameters
from semc.dbsettings import DEFAULT
from semc.events import messages as msg
from semc.events.models import ExposureQC, Notification, OutboxMessage, PublisherLease, SessionQC
from semc.events.qc import GOOD, VERDICTS, ExposureMetrics, Observation, QcRules, SessionMonitor

__all__ = ["ControllerEvents", "EventSettings", "events_attach", "outbox_emit", "routing_key", "verdict_notifications"]

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class EventSettings:
    """The events.* and qc.* configuration, typed (see semc/config.py)."""

    broker_url: str | None = None
    exchange: str = "semc.events"
    topic_prefix: str = "semc"
    stomp_destination: str = "/topic/{routing_key}"
    publisher: str = "thread"
    progress_interval_s: int = 30
    retention_days: int = 7
    qc_enabled: bool = True
    rules: QcRules = field(default_factory=QcRules)
    assess: bool = True
    notify_email: tuple[str, ...] = ()
    webhook_url: str | None = None
    notify_level: str = "STOP_AT_END"

    @property
    def outbox_enabled(self) -> bool:
        return bool(self.broker_url)

    @property
    def notify_enabled(self) -> bool:
        return bool(self.notify_email or self.webhook_url)

    @classmethod
    def from_config(cls, config=None) -> EventSettings:
        """From SEMC's configuration (Django settings' SEMC_CONFIG unless given).

        Raises
        ------
        ConfigurationError
            A QC rules file that cannot be read or holds a bad rule.
        """
        if config is None:
            from django.conf import settings

            config = settings.SEMC_CONFIG
        rules = QcRules()
        if config["qc.rules"]:
            path = config["qc.rules"]
            try:
                with open(path, "rb") as handle:
                    rules = QcRules.from_mapping(tomllib.load(handle), source=path)
            except (OSError, tomllib.TOMLDecodeError, InvalidParameters) as exc:
                raise ConfigurationError(f"qc.rules: {exc}", key="qc.rules", source=path) from None
        return cls(broker_url=config["events.broker_url"], exchange=config["events.exchange"],
                   topic_prefix=config["events.topic_prefix"], stomp_destination=config["events.stomp_destination"],
                   publisher=config["events.publisher"], progress_interval_s=config["events.progress_interval_s"],
                   retention_days=config["events.retention_days"], qc_enabled=config["qc.enabled"], rules=rules,
                   assess=config["qc.assess"], notify_email=tuple(config["qc.notify_email"]),
                   webhook_url=config["qc.webhook_url"], notify_level=config["qc.notify_level"])


def routing_key(prefix: str, message_type: str, session_name: str) -> str:
    """``<prefix>.<type without "semc.">.<session>``, e.g. ``semc.session.verdict.26nov23a``."""
    words = message_type.removeprefix("semc.")
    return f"{_WORD.sub('_', prefix)}.{words}.{_WORD.sub('_', session_name) or '_'}"


def outbox_emit(run, ref: msg.RunRef, payload: Any, *, prefix: str, message_id: str | None = None) -> str | None:
    """Add one message to the outbox (inside the caller's transaction); returns its id, or None when a
    message with this id is there already (a result reported twice is sent once)."""
    write_lock()
    message_id = message_id or str(uuid.uuid4())
    if OutboxMessage.objects.filter(message_id=message_id).exists():
        return None
    seq = (OutboxMessage.objects.filter(run=run).aggregate(m=Max("seq"))["m"] or 0) + 1
    envelope = msg.Envelope(id=message_id, type=payload.TYPE, version=msg.SCHEMA_VERSION,
                            time=msg.Envelope.now_iso(), seq=seq, run=ref, payload=payload)
    OutboxMessage.objects.create(run=run, seq=seq, message_id=message_id, type=payload.TYPE,
                                 routing_key=routing_key(prefix, payload.TYPE, ref.session_name),
                                 body=envelope.to_json())
    return message_id


def write_lock() -> None:
    """On SQLite, take the database's write lock at the start of a transaction (a no-op UPDATE), as
    ``BEGIN IMMEDIATE`` would: a transaction that reads first and writes later fails at once ("database
    is locked") when the publisher thread committed in between, instead of waiting for its turn."""
    from django.db import connections

    connection = connections[DEFAULT]
    if connection.vendor == "sqlite" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {PublisherLease._meta.db_table} SET name = name WHERE 1 = 0")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class ControllerEvents:
    """Events and QC of one controller's run (built by :func:`events_attach`)."""

    def __init__(self, controller, settings: EventSettings) -> None:
        self.controller = controller
        self.settings = settings
        self.run = controller.run
        self.ref = msg.RunRef(run_id=self.run.pk, run_name=self.run.name, rundir=self.run.rundir,
                              session_id=self.run.session_id, session_name=self.run.session_name,
                              preset=self.run.preset, host=socket.gethostname())
        self.steps = tuple(controller.params.steps)
        self.last_progress = time.monotonic()
        self.failures_seen: set[tuple[int, int]] = set()
        self.monitor = None
        if settings.qc_enabled:
            row = SessionQC.objects.filter(run=self.run).first()
            self.monitor = (SessionMonitor.from_state(row.state, settings.rules) if row and row.state
                            else SessionMonitor(settings.rules))
        self.publisher = None
        if settings.publisher == "thread" and (settings.outbox_enabled or settings.notify_enabled):
            from semc.events.publisher import PublisherThread

            self.publisher = PublisherThread(settings)
            self.publisher.start()

    # --- helpers ------------------------------------------------------------------------------------------
    def _emit(self, payload: Any, message_id: str | None = None) -> str | None:
        if not self.settings.outbox_enabled:
            return None
        return outbox_emit(self.run, self.ref, payload, prefix=self.settings.topic_prefix, message_id=message_id)

    def _wake(self) -> None:
        if self.publisher is not None:
            transaction.on_commit(self.publisher.wake, using=DEFAULT)

    @contextlib.contextmanager
    def _guarded(self, what: str, snapshot: dict | None) -> Iterator[None]:
        """A savepoint: an error here is logged and undone, never passed on to processing."""
        try:
            with transaction.atomic(using=DEFAULT):
                yield
        except Exception:
            logger.exception("%s: events/QC not recorded", what)
            if snapshot is not None:
                self.monitor = SessionMonitor.from_state(snapshot, self.settings.rules)

    # --- hooks ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def stored(self, step: str, exposure_id: int, summary: dict[str, Any]) -> Iterator[None]:
        """Wrap the ledger's ``done``: the result's message and QC commit in the same transaction."""
        from semc.models.semc import ExposureStep

        observation, metrics, assessed, snapshot = None, None, False, None
        reconciled = bool(summary.get("reconciled"))
        if self.monitor is not None and step == self.steps[-1] and not reconciled:
            try:
                metrics = self._metrics(step, exposure_id, summary)
                snapshot = self.monitor.state()
                observation = self.monitor.observe(metrics)
                assessed = self._assess(exposure_id, summary, observation.exposure.keep)
            except Exception:
                logger.exception("exposure=%s step=%s QC failed", exposure_id, step)
                if snapshot is not None:
                    self.monitor = SessionMonitor.from_state(snapshot, self.settings.rules)
                observation = None
        if observation is None and not self.settings.outbox_enabled:
            yield  # nothing to record: no messages wanted, QC off (or a reconciled line)
            return
        with transaction.atomic(using=DEFAULT):
            write_lock()
            try:
                yield
            except BaseException:
                if snapshot is not None:
                    self.monitor = SessionMonitor.from_state(snapshot, self.settings.rules)
                raise
            with self._guarded(f"exposure={exposure_id} step={step}", snapshot):
                line = ExposureStep.objects.get(run=self.run, step=step, exposure_id=exposure_id)
                self._emit(self._stored_payload(step, line, summary, reconciled),
                           msg.message_id_for(self.run.rundir, step, exposure_id, "stored"))
                if observation is not None:
                    self._qc_record(observation, metrics, assessed)
                self._progress()
        self._wake()

    @contextlib.contextmanager
    def failed(self, step: str, exposure_id: int, error: BaseException) -> Iterator[None]:
        """Wrap the ledger's ``failed``: the failure's message (and QC's failure count) in its transaction."""
        from semc.models.semc import ExposureStep

        with transaction.atomic(using=DEFAULT):
            write_lock()
            yield
            snapshot = self.monitor.state() if self.monitor is not None else None
            with self._guarded(f"exposure={exposure_id} step={step}", snapshot):
                line = ExposureStep.objects.get(run=self.run, step=step, exposure_id=exposure_id)
                self._emit(msg.ExposureFailed(exposure_id=exposure_id, filename=line.filename, step=step,
                                              state=line.state, attempts=line.attempts,
                                              error_kind=line.error_kind, error=str(error)[-2000:]),
                           msg.message_id_for(self.run.rundir, step, exposure_id, "failed", line.attempts))
                key = (exposure_id, line.attempts)
                if self.monitor is not None and key not in self.failures_seen:
                    self.failures_seen.add(key)
                    self._qc_record(self.monitor.observe_failure(exposure_id), None, False)
        self._wake()

    def run_state(self, state: str, reason: str = "") -> None:
        with transaction.atomic(using=DEFAULT), self._guarded(f"run {self.run.pk} {state}", None):
            write_lock()
            if state != "started":
                self._progress(force=True)
            self._emit(msg.RunState(state=state, steps=list(self.steps), pid=os.getpid(), reason=reason))
        self._wake()

    def close(self, *, failed: bool) -> None:
        """At shutdown: the run's last state, then the publisher thread drains what it can and stops."""
        self.run_state("failed" if failed else "stopped")
        if self.publisher is not None:
            self.publisher.stop(drain_timeout_s=10.0)

    # --- what is recorded ---------------------------------------------------------------------------------
    def _stored_payload(self, step: str, line, summary: dict[str, Any], reconciled: bool):
        latency = line.latency_s
        if step == "motioncorrection":
            return msg.MotionCorrectionStored(
                exposure_id=line.exposure_id, filename=line.filename, aligned_id=summary.get("aligned_id"),
                aligned_filename=summary.get("aligned_filename"), drift_total_px=_finite(summary.get("drift_total_px")),
                drift_total_A=_finite(summary.get("accum_motion_total_A")),
                drift_early_A=_finite(summary.get("accum_motion_early_A")),
                drift_late_A=_finite(summary.get("accum_motion_late_A")),
                pixel_size_A=_finite(summary.get("pixel_size_A")), latency_s=latency, attempts=line.attempts,
                reconciled=reconciled)
        du, dv = _finite(summary.get("defocus_u_A")), _finite(summary.get("defocus_v_A"))
        return msg.CtfStored(
            exposure_id=line.exposure_id, filename=line.filename, image_id=summary.get("image_id"), defocus_u_A=du,
            defocus_v_A=dv, astigmatism_A=abs(du - dv) if du is not None and dv is not None else None,
            angle_deg=_finite(summary.get("angle_deg")), phase_shift_rad=_finite(summary.get("phase_shift_rad")),
            resolution_A=_finite(summary.get("resolution_A")), cc=_finite(summary.get("cc")), latency_s=latency,
            attempts=line.attempts, reconciled=reconciled)

    def _metrics(self, step: str, exposure_id: int, summary: dict[str, Any]) -> ExposureMetrics:
        from semc.models import leginon as lg
        from semc.models.semc import ExposureStep

        results = {step: summary}
        for other in self.steps:
            if other != step:
                line = ExposureStep.objects.filter(run=self.run, step=other, exposure_id=exposure_id).first()
                results[other] = line.result if line else {}
        mc, ctf = results.get("motioncorrection", {}), results.get("ctfestimation")
        filename, target_m = (lg.AcquisitionImageData.objects.filter(pk=exposure_id)
                              .values_list("filename", "scope__defocus").first() or ("", None))
        ice = None
        for model in (lg.ZeroLossIceThicknessData, lg.ObjIceThicknessData):
            ice = model.objects.filter(image_id=exposure_id).order_by("-id").values_list("thickness", flat=True).first()
            if ice is not None:
                break
        measured = target = astig = None
        if ctf:
            du, dv = _finite(ctf.get("defocus_u_A")), _finite(ctf.get("defocus_v_A"))
            if du is not None and dv is not None:
                measured, astig = (du + dv) / 2 / 1e4, abs(du - dv)
        if target_m is not None:
            target = -float(target_m) * 1e6  # Leginon: metres, negative = underfocus
        return ExposureMetrics(exposure_id=exposure_id, filename=filename or "", defocus_target_um=target,
                               defocus_measured_um=measured, astigmatism_A=astig,
                               resolution_A=_finite(ctf.get("resolution_A")) if ctf else None,
                               drift_total_A=_finite(mc.get("accum_motion_total_A")), ice_thickness_nm=_finite(ice),
                               ctf_expected=ctf is not None)

    def _assess(self, exposure_id: int, summary: dict[str, Any], keep: bool) -> bool:
        """Classic ApAssessmentData rows for the raw exposure and its aligned images (the viewer shows
        either); never over an existing assessment. Returns whether the rows are SEMC's verdict."""
        if not self.settings.assess:
            return False
        from semc.models.semc import ExposureStep

        images = [exposure_id]
        mc = summary if "aligned_id" in summary else (
            ExposureStep.objects.filter(run=self.run, step="motioncorrection", exposure_id=exposure_id)
            .values_list("result", flat=True).first() or {})
        images += [i for i in (mc.get("aligned_id"), mc.get("aligned_dw_id")) if i]
        return assessment_write(session_id=self.run.session_id, image_ids=images, keep=keep)

    def _qc_record(self, observation: Observation, metrics: ExposureMetrics | None, assessed: bool) -> None:
        if observation.exposure is not None and metrics is not None:
            verdict = observation.exposure
            findings = [_finding_dict(f) for f in verdict.findings]
            values = {k: v for k, v in metrics.as_dict().items()
                      if k not in ("exposure_id", "filename", "ctf_expected")}
            ExposureQC.objects.update_or_create(run=self.run, exposure_id=verdict.exposure_id, defaults={
                "filename": metrics.filename, "keep": verdict.keep, "findings": findings, "metrics": values, "assessed": assessed})
            self._emit(msg.ExposureVerdictMessage(exposure_id=verdict.exposure_id, filename=metrics.filename,
                                                  keep=verdict.keep, findings=list(verdict.findings),
                                                  metrics=values, assessed=assessed),
                       msg.message_id_for(self.run.rundir, verdict.exposure_id, "verdict"))
        row, _ = SessionQC.objects.get_or_create(run=self.run)
        previous = row.verdict or None
        session = observation.session
        if observation.changed:
            row.verdict, row.reason = session.verdict, session.reason
            row.findings = [_finding_dict(f) for f in session.findings]
        row.exposures_seen, row.state = session.exposures_seen, self.monitor.state()
        row.save()
        if not observation.changed:
            return
        exposure_id = observation.exposure.exposure_id if observation.exposure else None
        payload = msg.SessionVerdictMessage(verdict=session.verdict, previous=previous, reason=session.reason,
                                            findings=list(session.findings), exposures_seen=session.exposures_seen,
                                            exposure_id=exposure_id)
        message_id = self._emit(payload) or msg.message_id_for(self.run.rundir, "session", session.exposures_seen)
        logger.log(logging.INFO if session.verdict == GOOD else logging.WARNING, "session %s QC verdict %s: %s",
                   self.ref.session_name, session.verdict, session.reason)
        verdict_notifications(self.run, self.ref, self.settings, payload, previous, message_id)

    def _progress(self, *, force: bool = False) -> None:
        if not self.settings.outbox_enabled:
            return
        if not force and time.monotonic() - self.last_progress < self.settings.progress_interval_s:
            return
        from semc.base.ledger import run_metrics

        self.last_progress = time.monotonic()
        for step in self.steps:
            m = run_metrics(self.run, step)
            self._emit(msg.RunProgress(step=step, counts=m.counts, backlog=m.backlog,
                                       throughput_per_min=round(m.throughput_per_min, 3),
                                       latency_p50_s=m.latency_p50_s, latency_p95_s=m.latency_p95_s,
                                       latency_max_s=m.latency_max_s, catch_up_s=m.catch_up_s))


def verdict_notifications(run, ref: msg.RunRef, settings: EventSettings, payload: msg.SessionVerdictMessage,
                          previous: str | None, message_id: str) -> int:
    """Queue the e-mail and webhook notifications of a session verdict (inside the caller's transaction):
    a verdict at or above ``qc.notify_level``, or the recovery from one. Returns how many were queued."""
    level = VERDICTS.index(settings.notify_level)
    now_level = VERDICTS.index(payload.verdict)
    recovered = previous is not None and VERDICTS.index(previous) >= level > now_level
    if not (now_level >= level or recovered) or not settings.notify_enabled:
        return 0
    subject = f"[SEMC] {ref.session_name}: {payload.verdict}"
    body = (f"Session {ref.session_name} (run {ref.run_name}, {ref.rundir}) on {ref.host}\n"
            f"QC verdict: {payload.verdict} (was {previous or 'none'}) after {payload.exposures_seen} "
            f"exposures\n\n{payload.reason}\n")
    queued = 0
    if settings.notify_email:
        queued += Notification.objects.get_or_create(message_id=message_id, channel=Notification.Channel.MAIL,
                                                     defaults={"run": run, "subject": subject, "body": body})[1]
    if settings.webhook_url:
        envelope = {"subject": subject, "text": body, "session": ref.session_name, "verdict": payload.verdict,
                    "previous": previous, "reason": payload.reason, "message_id": message_id}
        queued += Notification.objects.get_or_create(
            message_id=message_id, channel=Notification.Channel.WEBHOOK,
            defaults={"run": run, "subject": subject, "body": json.dumps(envelope)})[1]
    return queued


def _finding_dict(finding) -> dict[str, Any]:
    return asdict(finding)


def events_attach(controller, settings: EventSettings | None = None) -> ControllerEvents:
    """Events and QC for a prepared controller (its run exists); sends the ``started`` message."""
    events = ControllerEvents(controller, settings or EventSettings.from_config())
    events.run_state("started")
    return events


def assessment_write(*, session_id: int, image_ids: list[int], keep: bool) -> bool:
    """Classic assessment rows (``selectionkeep`` 1 keep, 0 reject) in the session's ``run1`` assessment
    run, as Appion's ``insertImgAssessmentStatus`` writes them, in one Appion transaction.

    Nothing is written when any of the images has an assessment already (a person's wins). Returns True
    when the rows there are SEMC's verdict (written now, or by an earlier attempt with the same value).
    """
    from semc import models as m
    from semc.models.routers import current_appion_alias

    value = 1 if keep else 0
    with transaction.atomic(using=current_appion_alias.get()):
        existing = list(m.ApAssessmentData.objects.filter(image_id__in=image_ids).values_list("image_id",
                                                                                              "selectionkeep"))
        if existing:
            return {i for i, _ in existing} == set(image_ids) and all(v == value for _, v in existing)
        run = (m.ApAssessmentRunData.objects.filter(session_id=session_id, name="run1").order_by("id").first()
               or m.ApAssessmentRunData.objects.create(session_id=session_id, name="run1"))
        for image_id in image_ids:
            m.ApAssessmentData.objects.create(assessmentrun=run, image_id=image_id, selectionkeep=value)
    return True
