"""Notifications of session verdicts: queued in the verdict's transaction, sent by the publisher through
Django's mail and to a real local web hook, retried with a back-off while the hook is away; the
admin pages of the events app answer."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail

from semc.events import messages as msg
from semc.events.hooks import EventSettings, verdict_notifications
from semc.events.models import Notification
from semc.events.publisher import OutboxPublisher
from semc.models.semc import ProcessingRun

pytestmark = pytest.mark.django_db(databases="__all__")

REF = msg.RunRef(run_id=1, run_name="ddstack1", rundir="/data/run", session_id=7, session_name="26nov23a",
                 preset="enn", host="head1")


def _verdict(verdict: str, reason: str = "4 exposures in a row rejected") -> msg.SessionVerdictMessage:
    return msg.SessionVerdictMessage(verdict=verdict, previous=None, reason=reason, findings=[], exposures_seen=64,
                                     exposure_id=1063)


@pytest.fixture
def hook():
    """A real HTTP server on loopback that records what is POSTed to it."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/semc", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def run():
    return ProcessingRun.objects.create(name="ddstack1", rundir="/data/run", session_id=7, session_name="26nov23a")


def test_a_stop_verdict_is_mailed_and_posted_once(run, hook):
    url, received = hook
    settings = EventSettings(notify_email=("scope@example.org",), webhook_url=url)
    assert verdict_notifications(run, REF, settings, _verdict("STOP_NOW"), "GOOD", "m-1") == 2
    assert verdict_notifications(run, REF, settings, _verdict("STOP_NOW"), "GOOD", "m-1") == 0  # once per message
    publisher = OutboxPublisher(settings)
    assert publisher.notify() == 2 and publisher.notify() == 0
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "[SEMC] 26nov23a: STOP_NOW"
    assert mail.outbox[0].to == ["scope@example.org"] and "4 exposures in a row" in mail.outbox[0].body
    assert received == [{"subject": "[SEMC] 26nov23a: STOP_NOW", "text": mail.outbox[0].body,
                         "session": "26nov23a", "verdict": "STOP_NOW", "previous": "GOOD",
                         "reason": "4 exposures in a row rejected", "message_id": "m-1"}]


def test_levels_below_the_notify_level_are_quiet_but_a_recovery_is_told(run, hook):
    url, _ = hook
    settings = EventSettings(webhook_url=url, notify_level="STOP_NOW")
    assert verdict_notifications(run, REF, settings, _verdict("STOP_AT_END"), "GOOD", "a") == 0
    assert verdict_notifications(run, REF, settings, _verdict("GOOD"), None, "b") == 0
    assert verdict_notifications(run, REF, settings, _verdict("GOOD"), "STOP_NOW", "c") == 1


def test_a_hook_that_is_away_is_retried_later(run):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = EventSettings(webhook_url=f"http://127.0.0.1:{port}/x")
    verdict_notifications(run, REF, settings, _verdict("STOP_NOW"), "GOOD", "m-2")
    assert OutboxPublisher(settings, webhook_timeout_s=2).notify() == 0
    note = Notification.objects.get()
    assert note.sent_at is None and note.attempts == 1 and "Connection refused" in note.last_error
    assert note.next_attempt_at > dt.datetime.now() + dt.timedelta(seconds=3)
    assert OutboxPublisher(settings).notify() == 0 and Notification.objects.get().attempts == 1  # not due yet


def test_a_webhook_url_must_be_http():
    settings = EventSettings(webhook_url="file:///etc/passwd")
    with pytest.raises(Exception, match="must be http"):
        OutboxPublisher(settings)._webhook("{}")


def test_the_events_admin_pages_answer(admin_client, run):
    verdict_notifications(run, REF, EventSettings(notify_email=("a@b.c",)), _verdict("STOP_NOW"), None, "m-3")
    for name in ("outboxmessage", "notification", "sessionqc", "exposureqc", "publisherlease"):
        assert admin_client.get(f"/admin/semc_events/{name}/").status_code == 200
