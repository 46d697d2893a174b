"""How an acquisition program (Leginon, SerialEM, EPU scripting) follows SEMC's verdicts: a small client.

Run it beside the microscope (needs only ``pika``; no Django, no SEMC database)::

    python -m semc.events.client_example --url amqp://leginon:secret@broker:5672/semc \\
        --session 26nov23a --queue leginon.krios1.verdicts

It declares a durable queue bound to the session's verdicts (so nothing is missed while it is away),
takes each message once (de-duplicated by message id in a small SQLite file: delivery is at least once),
acknowledges it after handling, and prints what Leginon should do:

* ``semc.session.verdict`` with ``verdict``:
  ``GOOD`` carry on; ``STOP_AT_END`` finish the current target list (grid square), then pause the queue;
  ``STOP_NOW`` abort the current target list now and pause. ``reason`` says why (for the operator).
* ``semc.exposure.verdict``: ``keep`` true/false for ``exposure_id`` (AcquisitionImageData.DEF_id), with
  the rules that fired; the same verdict is in the Appion database as an ApAssessmentData row.

In Leginon, the handler would call the node's pause/abort (e.g. the Acquisition node's
``pauseTargetListProcessing`` / ``abortTargetListProcessing`` through its event bus); here it prints.
Routing keys: ``<prefix>.session.verdict.<session>`` and ``<prefix>.exposure.verdict.<session>``
(``*`` for every session). The message format is SEMC's JSON envelope (semc/events/messages.py; JSON
Schema in semc/events/schema/semc-events-v1.json, or ``semc events schema``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["SeenIds", "VerdictSubscriber", "main"]

logger = logging.getLogger(__name__)

ACTIONS = {"GOOD": "carry on", "STOP_AT_END": "finish the current target list, then pause",
           "STOP_NOW": "abort the current target list now and pause"}


class SeenIds:
    """Message ids already handled (SQLite file, or memory with ``path=None``): each message once."""

    def __init__(self, path: str | Path | None) -> None:
        self.db = sqlite3.connect(str(path) if path else ":memory:")
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at REAL)")

    def first_time(self, message_id: str) -> bool:
        """Record ``message_id``; False if it was seen before."""
        try:
            with self.db:
                self.db.execute("INSERT INTO seen VALUES (?, ?)", (message_id, time.time()))
            return True
        except sqlite3.IntegrityError:
            return False


class VerdictSubscriber:
    """A durable AMQP subscription to SEMC messages, de-duplicated by message id.

    Parameters
    ----------
    url
        ``amqp://user:password@host:port/vhost``.
    queue
        Durable queue name (one per subscriber; it keeps messages while the subscriber is away).
    bindings
        Routing-key patterns, e.g. ``("semc.session.verdict.26nov23a",)``.
    """

    def __init__(self, url: str, *, queue: str, bindings: tuple[str, ...], exchange: str = "semc.events",
                 seen: SeenIds | None = None) -> None:
        import pika

        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
        self.channel.queue_declare(queue=queue, durable=True)
        for pattern in bindings:
            self.channel.queue_bind(queue=queue, exchange=exchange, routing_key=pattern)
        self.queue = queue
        self.seen = seen or SeenIds(None)
        self.duplicates = 0

    def consume(self, handle: Callable[[dict], None], *, idle_timeout_s: float | None = None,
                max_messages: int | None = None) -> int:
        """Handle messages until ``idle_timeout_s`` passes with none (or ``max_messages``); returns how
        many new (not duplicate) messages were handled. Each is acknowledged after ``handle`` returns."""
        handled = 0
        for method, properties, body in self.channel.consume(self.queue, inactivity_timeout=idle_timeout_s):
            if method is None:
                break
            message = json.loads(body)
            if self.seen.first_time(message["id"]):
                handle(message)
                handled += 1
            else:
                self.duplicates += 1
            self.channel.basic_ack(method.delivery_tag)
            if max_messages is not None and handled >= max_messages:
                break
        self.channel.cancel()
        return handled

    def close(self) -> None:
        self.connection.close()


def describe(message: dict) -> str:
    """One line for the operator (what Leginon would do)."""
    payload = message["payload"]
    session = message["run"]["session_name"]
    if message["type"] == "semc.session.verdict":
        return f"{session}: {payload['verdict']} -> {ACTIONS[payload['verdict']]} ({payload['reason']})"
    if message["type"] == "semc.exposure.verdict":
        why = "; ".join(f["message"] for f in payload["findings"]) or "in control"
        return f"{session}: exposure {payload['exposure_id']} {'keep' if payload['keep'] else 'reject'} ({why})"
    return f"{session}: {message['type']} #{message['seq']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="amqp://user:password@host:port/vhost")
    parser.add_argument("--session", default="*", help="session name (default: every session)")
    parser.add_argument("--queue", required=True, help="durable queue name for this subscriber")
    parser.add_argument("--prefix", default="semc", help="events.topic_prefix of the SEMC daemon")
    parser.add_argument("--exchange", default="semc.events")
    parser.add_argument("--seen", default="semc-seen.sqlite3", help="file of handled message ids")
    parser.add_argument("--exposures", action="store_true", help="also follow keep/reject of each exposure")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    bindings = [f"{args.prefix}.session.verdict.{args.session}"]
    if args.exposures:
        bindings.append(f"{args.prefix}.exposure.verdict.{args.session}")
    subscriber = VerdictSubscriber(args.url, queue=args.queue, bindings=tuple(bindings), exchange=args.exchange,
                                   seen=SeenIds(args.seen))
    try:
        subscriber.consume(lambda message: logger.info("%s", describe(message)))
    except KeyboardInterrupt:
        pass
    finally:
        subscriber.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
