"""Two writers on one SQLite file (the daemon and the simulator, the web, another daemon): a transaction
that reads and then writes must wait for the other writer, not fail at once with "database is locked"."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from semc.models.semc import ProcessingRun

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def _run(name: str) -> ProcessingRun:
    return ProcessingRun.objects.create(name=name, rundir=f"/data/{name}", session_id=1, session_name="s")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's locking only")
def test_a_read_then_write_transaction_waits_for_a_concurrent_writer():
    read_done, other_wrote = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def reader_then_writer() -> None:
        try:
            with transaction.atomic():
                ProcessingRun.objects.count()  # the read: in deferred mode only a shared snapshot
                read_done.set()
                other_wrote.wait(timeout=2.0)  # with IMMEDIATE the other writer is blocked: times out
                _run("first")
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)
        finally:
            connections.close_all()

    def other_writer() -> None:
        try:
            read_done.wait(timeout=10)
            _run("second")
            other_wrote.set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader_then_writer), threading.Thread(target=other_writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(ProcessingRun.objects.values_list("name", flat=True)) == ["first", "second"]
