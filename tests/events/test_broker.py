"""Against the real test RabbitMQ: a session processed by the daemon arrives in order with its schema;
the broker stopped and restarted mid-session loses nothing and (after de-duplication by id) duplicates
nothing; STOMP publishing waits for the broker's receipts."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest
from django.db import transaction

from semc import models as m
from semc.events import messages as msg
from semc.events.client_example import SeenIds, VerdictSubscriber
from semc.events.hooks import EventSettings, outbox_emit
from semc.events.models import ExposureQC, OutboxMessage
from semc.events.publisher import OutboxPublisher, PublisherThread
from semc.models.semc import ProcessingRun
from tests.events.conftest import broker_restart
from tests.test_loop import _params, _run, session  # noqa: F401 - the daemon's small simulated session

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True), pytest.mark.rabbitmq]


def _check(message: dict) -> None:
    """The message reads back into its dataclasses (every required field there, a known type and version);
    and, where jsonschema is installed, it validates against the JSON Schema."""
    back = msg.envelope_from_json(json.dumps(message))
    assert back.id == message["id"] and back.payload.TYPE == message["type"]
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator(msg.json_schema()).validate(message)


def _collect(subscriber, *, idle_s: float = 3.0) -> list[dict]:
    received = []
    subscriber.consume(received.append, idle_timeout_s=idle_s)
    return received


@pytest.mark.slow
def test_a_session_processed_by_the_daemon_arrives_in_order_with_its_schema(tmp_path, session, amqp_url,  # noqa: F811
                                                                             topic_prefix, settings):
    config = settings.SEMC_CONFIG
    settings.SEMC_CONFIG = dataclasses.replace(config, values={
        **config.values, "events.broker_url": amqp_url, "events.topic_prefix": topic_prefix,
        "events.progress_interval_s": 0, "qc.assess": True})
    subscriber = VerdictSubscriber(amqp_url, queue=f"{topic_prefix}.all", bindings=(f"{topic_prefix}.#",))
    try:
        controller = _run(_params(tmp_path))
        received = _collect(subscriber)
    finally:
        subscriber.close()
    for message in received:
        _check(message)
    assert [m_["seq"] for m_ in received] == list(range(1, len(received) + 1))  # every message, in order
    assert {m_["run"]["run_id"] for m_ in received} == {controller.run.pk}
    types = [m_["type"] for m_ in received]
    assert types[0] == "semc.run.state" and received[0]["payload"]["state"] == "started"
    assert types[-1] == "semc.run.state" and received[-1]["payload"]["state"] == "stopped"
    raw = sorted(i.pk for i in session.images)
    stored = [m_["payload"] for m_ in received if m_["type"] == "semc.exposure.motioncorrection.stored"]
    assert sorted(p["exposure_id"] for p in stored) == raw
    assert all(p["drift_total_A"] > 0 and p["attempts"] == 0 for p in stored), stored
    verdicts = [m_["payload"] for m_ in received if m_["type"] == "semc.exposure.verdict"]
    assert sorted(p["exposure_id"] for p in verdicts) == raw and all(p["keep"] and p["assessed"] for p in verdicts)
    for message in received:  # each exposure's verdict follows its stored result
        if message["type"] == "semc.exposure.verdict":
            before = [x for x in received[:message["seq"] - 1] if x["type"].endswith(".stored")]
            assert message["payload"]["exposure_id"] in {x["payload"]["exposure_id"] for x in before}
    assert "semc.run.progress" in types
    assert not OutboxMessage.objects.filter(published_at=None).exists()
    assert ExposureQC.objects.filter(run=controller.run, keep=True).count() == 4
    # the classic assessment rows: the raw exposure and its two aligned sums, keep = 1
    assessed = m.ApAssessmentData.objects.filter(image_id__in=raw)
    assert sorted(a.image_id for a in assessed) == raw and {a.selectionkeep for a in assessed} == {1}
    assert m.ApAssessmentData.objects.count() == 12 and m.ApAssessmentRunData.objects.get().name == "run1"


@pytest.mark.slow
def test_a_broker_restart_mid_session_loses_nothing_and_duplicates_nothing(amqp_url, topic_prefix):
    run = ProcessingRun.objects.create(name="run1", rundir="/data/run1", session_id=1, session_name="26nov23a")
    ref = msg.RunRef(run_id=run.pk, run_name="run1", rundir="/data/run1", session_id=1, session_name="26nov23a",
                     preset="enn", host="head1")
    settings = EventSettings(broker_url=amqp_url, topic_prefix=topic_prefix)
    subscriber = VerdictSubscriber(amqp_url, queue=f"{topic_prefix}.acq", bindings=(f"{topic_prefix}.#",))
    subscriber.close()  # the durable queue keeps what arrives while nobody listens
    publisher = PublisherThread(settings, poll_s=0.2)
    publisher.start()
    emitted, slowest = [], 0.0

    def emit(n: int) -> None:
        nonlocal slowest
        for _ in range(n):
            started = time.monotonic()
            with transaction.atomic():
                emitted.append(outbox_emit(run, ref, msg.RunState(state="started", steps=["x"], pid=1),
                                           prefix=topic_prefix))
            publisher.wake()
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.02)

    try:
        emit(30)
        broker_restart(stopped_hook=lambda: emit(30))  # "processing" goes on while the broker is away
        emit(30)
        deadline = time.monotonic() + 60
        while OutboxMessage.objects.filter(published_at=None).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        publisher.stop(drain_timeout_s=5)
    assert not OutboxMessage.objects.filter(published_at=None).exists()
    assert slowest < 1.0  # writing a message never waits for the broker
    assert OutboxMessage.objects.filter(attempts__gt=1).exists()  # the outage was real: retried
    subscriber = VerdictSubscriber(amqp_url, queue=f"{topic_prefix}.acq", bindings=(f"{topic_prefix}.#",),
                                   seen=SeenIds(None))
    try:
        received = _collect(subscriber, idle_s=2.0)
    finally:
        subscriber.close()
    assert [r["id"] for r in received] == emitted  # all 90, once each (after de-duplication), in order
    assert [r["seq"] for r in received] == list(range(1, 91))
    assert subscriber.duplicates <= 1  # at most the message in hand when the broker went away


def test_stomp_publishing_waits_for_receipts_and_keeps_order(stomp_url, topic_prefix):
    import stomp

    run = ProcessingRun.objects.create(name="run2", rundir="/data/run2", session_id=1, session_name="26nov23a")
    ref = msg.RunRef(run_id=run.pk, run_name="run2", rundir="/data/run2", session_id=1, session_name="26nov23a",
                     preset="enn", host="head1")
    got, done = [], threading.Event()

    class Listener(stomp.ConnectionListener):
        def on_message(self, frame):
            got.append(json.loads(frame.body))
            if len(got) == 5:
                done.set()

    from urllib.parse import urlsplit

    parts = urlsplit(stomp_url)
    consumer = stomp.Connection([(parts.hostname, parts.port)], vhost=parts.path.lstrip("/"))
    consumer.set_listener("t", Listener())
    consumer.connect(parts.username, parts.password, wait=True)
    consumer.subscribe(f"/topic/{topic_prefix}.#", id="1")
    try:
        with transaction.atomic():
            ids = [outbox_emit(run, ref, msg.RunState(state="started", steps=["x"], pid=i), prefix=topic_prefix)
                   for i in range(5)]
        publisher = OutboxPublisher(EventSettings(broker_url=stomp_url, topic_prefix=topic_prefix))
        try:
            assert publisher.drain() == 5
        finally:
            publisher.close()
        assert done.wait(10)
    finally:
        consumer.disconnect()
    assert [g["id"] for g in got] == ids and [g["payload"]["pid"] for g in got] == list(range(5))


def test_an_idle_connection_is_closed_and_reopened_for_the_next_message(amqp_url, topic_prefix):
    run = ProcessingRun.objects.create(name="run3", rundir="/data/run3", session_id=1, session_name="26nov23a")
    ref = msg.RunRef(run_id=run.pk, run_name="run3", rundir="/data/run3", session_id=1, session_name="26nov23a",
                     preset="enn", host="head1")
    subscriber = VerdictSubscriber(amqp_url, queue=f"{topic_prefix}.idle", bindings=(f"{topic_prefix}.#",))
    thread = PublisherThread(EventSettings(broker_url=amqp_url, topic_prefix=topic_prefix), poll_s=0.1)
    thread.publisher.idle_close_s = 0.5
    thread.start()
    try:
        ids = []
        for _ in range(2):
            with transaction.atomic():
                ids.append(outbox_emit(run, ref, msg.RunState(state="started", steps=[], pid=1), prefix=topic_prefix))
            thread.wake()
            deadline = time.monotonic() + 10
            while thread.publisher.transport is not None or OutboxMessage.objects.filter(published_at=None).exists():
                assert time.monotonic() < deadline, "not published, or the idle connection was kept"
                time.sleep(0.1)
        received = _collect(subscriber, idle_s=1.0)
    finally:
        thread.stop(drain_timeout_s=2)
        subscriber.close()
    assert [r["id"] for r in received] == ids
