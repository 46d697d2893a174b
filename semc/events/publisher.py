"""The publisher: drains the outbox to the broker in order, and sends the notifications; never blocks
processing.

Design: the daemon only *writes* outbox rows, inside the transaction of the result (semc.events.hooks).
A publisher reads them in id order, publishes each with the broker's confirmation (AMQP publisher
confirms; a STOMP receipt), and only then marks it published. With ``events.publisher = thread`` (the
default) the publisher is a daemon thread of the controller, woken after each commit; with
``external`` it is ``semc events publish`` (e.g. on a host that can reach the broker). A lease row makes
sure that one publisher at a time drains the outbox, so messages leave in commit order.

When the broker is away, the message in hand stays unpublished (its attempts and last error are
recorded), the connection is dropped and retried with an exponential back-off (0.5 s doubling to 30 s);
processing carries on, and the outbox simply grows until the broker is back. Delivery is at least once:
a publisher that dies between the broker's confirmation and its own ``published_at`` update sends that
message again, with the same id; consumers de-duplicate on the id (semc.events.client_example).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Protocol

from django.db import IntegrityError, transaction

from semc.base.errors import ProcessingError
from semc.dbsettings import DEFAULT
from semc.events.models import Notification, OutboxMessage, PublisherLease

__all__ = [
    "AmqpTransport",
    "BrokerUnavailable",
    "OutboxPublisher",
    "PublisherThread",
    "StompTransport",
    "Transport",
    "lease_acquire",
    "lease_release",
    "transport_open",
]

logger = logging.getLogger(__name__)

LEASE = "outbox"


class BrokerUnavailable(ProcessingError):
    """The broker could not be reached, refused the message or did not confirm it."""


class Transport(Protocol):
    def publish(self, row: OutboxMessage) -> None: ...

    def close(self) -> None: ...


def _safe_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port or ''}{parts.path}"


class AmqpTransport:
    """AMQP 0-9-1 (RabbitMQ) via pika: a durable topic exchange, persistent messages, publisher confirms."""

    def __init__(self, url: str, *, exchange: str, timeout_s: float = 10.0) -> None:
        import pika

        params = pika.URLParameters(url)
        params.socket_timeout = timeout_s
        params.blocked_connection_timeout = timeout_s
        params.connection_attempts = 1
        self.exchange = exchange
        try:
            self.connection = pika.BlockingConnection(params)
            self.channel = self.connection.channel()
            self.channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
            self.channel.confirm_delivery()
        except Exception as exc:  # noqa: BLE001 - pika raises many kinds; all mean "not now"
            raise BrokerUnavailable(f"AMQP broker {_safe_url(url)}: {type(exc).__name__}: {exc}",
                                    step="events") from None

    def publish(self, row: OutboxMessage) -> None:
        import pika

        properties = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                          message_id=row.message_id, type=row.type, app_id="semc",
                                          headers={"semc-seq": row.seq, "semc-run": row.run_id})
        try:
            self.channel.basic_publish(self.exchange, row.routing_key, row.body.encode(), properties)
        except Exception as exc:  # noqa: BLE001 - a nack, a closed channel, a lost connection
            raise BrokerUnavailable(f"AMQP publish of message {row.message_id}: {type(exc).__name__}: {exc}",
                                    step="events") from None

    def close(self) -> None:
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001, S110 - closing a dead connection
            pass


class StompTransport:
    """STOMP 1.2 (ActiveMQ, RabbitMQ's STOMP plugin) via stomp.py; each SEND waits for its RECEIPT."""

    def __init__(self, url: str, *, destination: str, exchange: str, timeout_s: float = 10.0) -> None:
        import stomp

        parts = urllib.parse.urlsplit(url)
        vhost = urllib.parse.unquote(parts.path.lstrip("/")) or None
        self.destination, self.exchange, self.timeout_s = destination, exchange, timeout_s
        self.receipts: dict[str, threading.Event] = {}
        self.error: str | None = None
        outer = self

        class _Listener(stomp.ConnectionListener):
            def on_receipt(self, frame) -> None:
                event = outer.receipts.get(frame.headers.get("receipt-id", ""))
                if event is not None:
                    event.set()

            def on_error(self, frame) -> None:
                outer.error = frame.headers.get("message", "error frame")

            def on_disconnected(self) -> None:
                outer.error = outer.error or "disconnected"

        try:
            self.conn = stomp.Connection([(parts.hostname, parts.port or 61613)], vhost=vhost, timeout=timeout_s,
                                         reconnect_attempts_max=1)
            if parts.scheme == "stomp+ssl":
                self.conn.set_ssl([(parts.hostname, parts.port or 61614)])
            self.conn.set_listener("semc", _Listener())
            self.conn.connect(urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or ""),
                              wait=True)
        except Exception as exc:  # noqa: BLE001 - stomp.py raises many kinds; all mean "not now"
            raise BrokerUnavailable(f"STOMP broker {_safe_url(url)}: {type(exc).__name__}: {exc}",
                                    step="events") from None

    def publish(self, row: OutboxMessage) -> None:
        event = self.receipts[row.message_id] = threading.Event()
        destination = self.destination.format(routing_key=row.routing_key, exchange=self.exchange)
        try:
            self.conn.send(destination, row.body, content_type="application/json",
                           headers={"persistent": "true", "receipt": row.message_id, "semc-message-id": row.message_id,
                                    "semc-type": row.type, "semc-seq": str(row.seq)})
            if not event.wait(self.timeout_s):
                raise BrokerUnavailable(f"STOMP: no receipt for message {row.message_id} ({self.error or 'timeout'})",
                                        step="events")
        except BrokerUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BrokerUnavailable(f"STOMP send of message {row.message_id}: {type(exc).__name__}: {exc}",
                                    step="events") from None
        finally:
            self.receipts.pop(row.message_id, None)

    def close(self) -> None:
        try:
            self.conn.disconnect()
        except Exception:  # noqa: BLE001, S110 - closing a dead connection
            pass


def transport_open(settings) -> Transport:
    """A connected transport for ``settings.broker_url`` (amqp, amqps, stomp, stomp+ssl).

    Raises
    ------
    BrokerUnavailable
        The broker cannot be reached.
    ProcessingError
        An unknown URL scheme.
    """
    scheme = urllib.parse.urlsplit(settings.broker_url).scheme
    if scheme in ("amqp", "amqps"):
        return AmqpTransport(settings.broker_url, exchange=settings.exchange)
    if scheme in ("stomp", "stomp+ssl"):
        return StompTransport(settings.broker_url, destination=settings.stomp_destination,
                              exchange=settings.exchange)
    raise ProcessingError(f"events.broker_url: unknown scheme {scheme!r} (amqp, amqps, stomp, stomp+ssl)",
                          step="events")


def _now() -> dt.datetime:
    return dt.datetime.now()


def lease_acquire(owner: str, *, seconds: float) -> bool:
    """Take or renew the publisher lease (a conditional UPDATE: atomic on SQLite and MariaDB)."""
    moment = _now()
    expires = moment + dt.timedelta(seconds=seconds)
    updated = PublisherLease.objects.filter(name=LEASE).filter(
        owner=owner).update(expires_at=expires) or PublisherLease.objects.filter(
        name=LEASE, expires_at__lt=moment).update(owner=owner, expires_at=expires)
    if updated:
        return True
    try:
        with transaction.atomic(using=DEFAULT):
            PublisherLease.objects.create(name=LEASE, owner=owner, expires_at=expires)
        return True
    except IntegrityError:
        return False


def lease_release(owner: str) -> None:
    PublisherLease.objects.filter(name=LEASE, owner=owner).delete()


class OutboxPublisher:
    """Drains the outbox (in id order) and the notifications. One call of :meth:`drain` does one pass."""

    def __init__(self, settings, *, owner: str | None = None, batch: int = 200, lease_s: float = 60.0,
                 webhook_timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.batch, self.lease_s, self.webhook_timeout_s = batch, lease_s, webhook_timeout_s
        self.transport: Transport | None = None
        self.published = 0
        self.idle_close_s = 20.0  # below RabbitMQ's default heartbeat timeout (60 s)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        lease_release(self.owner)

    def drain(self) -> int:
        """Publish what is pending, oldest first; returns how many were published.

        Raises
        ------
        BrokerUnavailable
            The broker is away; the message in hand stays pending (its attempts and error recorded).
        """
        if not self.settings.outbox_enabled or not lease_acquire(self.owner, seconds=self.lease_s):
            return 0
        count = 0
        while True:
            rows = list(OutboxMessage.objects.filter(published_at__isnull=True).order_by("id")[:self.batch])
            if not rows:
                return count
            for row in rows:
                try:
                    if self.transport is None:
                        self.transport = transport_open(self.settings)
                    self.transport.publish(row)
                except BrokerUnavailable as exc:
                    OutboxMessage.objects.filter(pk=row.pk).update(attempts=row.attempts + 1,
                                                                    last_error=str(exc)[-2000:])
                    if self.transport is not None:
                        self.transport.close()
                        self.transport = None
                    raise
                OutboxMessage.objects.filter(pk=row.pk).update(published_at=_now(), attempts=row.attempts + 1,
                                                                last_error="")
                count += 1
                self.published += 1
            lease_acquire(self.owner, seconds=self.lease_s)

    def notify(self) -> int:
        """Send due notifications (e-mail through Django's mail settings, webhook by POST); returns how
        many were sent. A failed one is retried with a back-off, up to 10 attempts."""
        from django.core.mail import send_mail

        sent = 0
        due = Notification.objects.filter(sent_at__isnull=True, attempts__lt=10).exclude(next_attempt_at__gt=_now())
        for note in due.order_by("id")[:50]:
            try:
                if note.channel == Notification.Channel.MAIL:
                    send_mail(note.subject, note.body, None, list(self.settings.notify_email), fail_silently=False)
                else:
                    self._webhook(note.body)
            except Exception as exc:  # noqa: BLE001 - a mail server or web hook that is away: retry later
                delay = min(600.0, 5.0 * 2 ** note.attempts)
                Notification.objects.filter(pk=note.pk).update(
                    attempts=note.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[-2000:],
                    next_attempt_at=_now() + dt.timedelta(seconds=delay))
                logger.warning("notification %s (%s) failed, retry in %.0f s: %s", note.pk, note.channel, delay, exc)
                continue
            Notification.objects.filter(pk=note.pk).update(sent_at=_now(), attempts=note.attempts + 1, last_error="")
            sent += 1
        return sent

    def _webhook(self, body: str) -> None:
        url = self.settings.webhook_url
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ProcessingError(f"qc.webhook_url must be http(s), got {_safe_url(url)}", step="events")
        request = urllib.request.Request(url, data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "semc-events"})
        with urllib.request.urlopen(request, timeout=self.webhook_timeout_s) as response:
            if response.status >= 300:
                raise ProcessingError(f"webhook answered HTTP {response.status}", step="events")

    def prune(self) -> int:
        """Delete messages published more than ``retention_days`` ago."""
        cutoff = _now() - dt.timedelta(days=self.settings.retention_days)
        deleted, _ = OutboxMessage.objects.filter(published_at__lt=cutoff).delete()
        return deleted

    def run(self, stop: threading.Event, wake: threading.Event | None = None, *, poll_s: float = 1.0,
            backoff_base_s: float = 0.5, backoff_cap_s: float = 30.0) -> None:
        """Drain until ``stop`` is set: at once when woken, else every ``poll_s``; back off while the
        broker is away."""
        wake = wake or threading.Event()
        failures, last_prune, last_sent = 0, 0.0, time.monotonic()
        while not stop.is_set():
            wait_s = poll_s
            try:
                if self.drain():
                    last_sent = time.monotonic()
                elif self.transport is not None and time.monotonic() - last_sent > self.idle_close_s:
                    self.transport.close()  # an idle connection would miss the broker's heartbeats
                    self.transport = None
                failures = 0
            except BrokerUnavailable as exc:
                failures += 1
                wait_s = min(backoff_cap_s, backoff_base_s * 2 ** (failures - 1))
                logger.warning("events: broker unavailable (attempt %d), retry in %.1f s: %s", failures, wait_s, exc)
            except Exception:
                logger.exception("events: publisher pass failed")
                wait_s = backoff_cap_s
            try:
                if self.settings.notify_enabled:
                    self.notify()
                if time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    self.prune()
            except Exception:
                logger.exception("events: notification pass failed")
            wake.wait(wait_s)
            wake.clear()


class PublisherThread:
    """The publisher as a daemon thread of the controller (``events.publisher = thread``)."""

    def __init__(self, settings, *, poll_s: float = 1.0) -> None:
        self.publisher = OutboxPublisher(settings)
        self.stop_event, self.wake_event = threading.Event(), threading.Event()
        self.poll_s = poll_s
        self.thread = threading.Thread(target=self._main, name="semc-events-publisher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self.wake_event.set()

    def _main(self) -> None:
        from django.db import connections

        try:
            self.publisher.run(self.stop_event, self.wake_event, poll_s=self.poll_s)
        finally:
            try:
                self.publisher.close()
            finally:
                connections.close_all()

    def stop(self, *, drain_timeout_s: float = 10.0) -> None:
        """Give the thread until ``drain_timeout_s`` to publish what is pending, then stop it; what is
        left stays in the outbox for the next publisher."""
        deadline = time.monotonic() + drain_timeout_s
        while time.monotonic() < deadline and self.thread.is_alive():
            if not OutboxMessage.objects.filter(published_at__isnull=True).exists() or not (
                    self.publisher.settings.outbox_enabled):
                break
            self.wake()
            time.sleep(0.1)
        self.stop_event.set()
        self.wake()
        self.thread.join(timeout=max(1.0, deadline - time.monotonic()))


def status_lines() -> list[str]:
    """Outbox and lease state, for ``semc events status``."""
    pending = OutboxMessage.objects.filter(published_at__isnull=True)
    first = pending.order_by("id").first()
    published = OutboxMessage.objects.exclude(published_at=None).count()
    lines = [f"outbox: {pending.count()} pending, {published} published"]
    if first is not None:
        lines.append(f"oldest pending: {first.type} #{first.seq} of run {first.run_id}, created {first.created_at}, "
                     f"{first.attempts} attempts, last error: {first.last_error or '-'}")
    lease = PublisherLease.objects.filter(name=LEASE).first()
    lines.append(f"publisher lease: {lease.owner} until {lease.expires_at}" if lease else "publisher lease: free")
    waiting = Notification.objects.filter(sent_at__isnull=True).count()
    lines.append(f"notifications waiting: {waiting}")
    return lines
