"""``semc events``: the schema it prints is the checked-in one; ``publish --once`` drains the outbox to
the broker (exit 0), or says the broker is away (exit 3) and keeps the messages; ``status`` tells."""

from __future__ import annotations

import dataclasses
import json
import socket

import pytest
from django.db import transaction

from semc.cli import main
from semc.events import messages as msg
from semc.events.hooks import outbox_emit
from semc.events.models import OutboxMessage
from semc.models.semc import ProcessingRun
from tests.events.test_messages import SCHEMA_FILE

REF = msg.RunRef(run_id=1, run_name="r", rundir="/data/r", session_id=1, session_name="26nov23a", preset="enn",
                 host="h")


def test_schema_prints_the_checked_in_schema(capsys):
    assert main(["events", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(SCHEMA_FILE.read_text())


def _configure(settings, url: str, prefix: str) -> None:
    config = settings.SEMC_CONFIG
    settings.SEMC_CONFIG = dataclasses.replace(config, values={**config.values, "events.broker_url": url,
                                                                 "events.topic_prefix": prefix})


def _emit(n: int, prefix: str) -> None:
    run = ProcessingRun.objects.create(name="r", rundir=f"/data/r{prefix}", session_id=1, session_name="26nov23a")
    with transaction.atomic():
        for i in range(n):
            outbox_emit(run, REF, msg.RunState(state="started", steps=[], pid=i), prefix=prefix)


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_publish_once_with_the_broker_away_exits_3_and_keeps_the_messages(settings, capsys, topic_prefix):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _configure(settings, f"amqp://guest:guest@127.0.0.1:{port}/", topic_prefix)
    _emit(3, topic_prefix)
    assert main(["events", "publish", "--once"]) == 3
    err = capsys.readouterr().err
    assert "AMQP broker amqp://127.0.0.1" in err and "guest" not in err  # the password never printed
    first = OutboxMessage.objects.order_by("id").first()
    assert OutboxMessage.objects.filter(published_at=None).count() == 3 and first.attempts == 1 and first.last_error
    assert main(["events", "status"]) == 0
    assert "outbox: 3 pending, 0 published" in capsys.readouterr().out


@pytest.mark.rabbitmq
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_publish_once_drains_the_outbox(settings, capsys, amqp_url, topic_prefix):
    _configure(settings, amqp_url, topic_prefix)
    _emit(4, topic_prefix)
    assert main(["events", "publish", "--once"]) == 0
    assert "published 4 message(s)" in capsys.readouterr().out
    assert not OutboxMessage.objects.filter(published_at=None).exists()
