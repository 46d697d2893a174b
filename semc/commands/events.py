"""``semc events``: the outbox publisher as its own process, the message schema, and the outbox state.

Examples::

    semc events publish              # drain the outbox to events.broker_url until stopped (SIGTERM/SIGINT)
    semc events publish --once       # one pass, then exit (0: all sent; 3: the broker is away)
    semc events schema > semc-events-v1.json
    semc events status
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from semc.cli import django_setup

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    publish = sub.add_parser("publish", help="publish the outbox to the broker, in order, with retries")
    publish.add_argument("--once", action="store_true", help="one pass, then exit")
    publish.add_argument("--poll", type=float, default=1.0, help="seconds between passes (default 1)")
    sub.add_parser("schema", help="print the JSON Schema of SEMC's messages")
    sub.add_parser("status", help="outbox, publisher lease and notifications")


def run(args: argparse.Namespace) -> int:
    if args.action == "schema":
        from semc.events.messages import json_schema

        json.dump(json_schema(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    django_setup()
    from semc.events.hooks import EventSettings
    from semc.events.publisher import BrokerUnavailable, OutboxPublisher, status_lines

    if args.action == "status":
        for line in status_lines():
            print(line)
        return 0
    settings = EventSettings.from_config()
    if not settings.outbox_enabled and not settings.notify_enabled:
        print("semc events: events.broker_url is not set (nor any notification): nothing to publish", file=sys.stderr)
        return 2
    publisher = OutboxPublisher(settings)
    try:
        if args.once:
            try:
                count = publisher.drain()
            except BrokerUnavailable as exc:
                print(f"semc events: {exc}", file=sys.stderr)
                return 3
            sent = publisher.notify() if settings.notify_enabled else 0
            print(f"published {count} message(s), sent {sent} notification(s)")
            return 0
        stop = threading.Event()

        def _stop(signum, frame) -> None:
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stop)
        logger.info("publishing the outbox (Ctrl-C to stop)")
        publisher.run(stop, poll_s=args.poll)
        return 0
    finally:
        publisher.close()
