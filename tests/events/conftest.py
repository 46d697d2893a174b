"""Fixtures of the events tests: the private RabbitMQ of scripts/rabbitmq-up.sh (SEMC_TEST_AMQP_URL,
SEMC_TEST_STOMP_*); tests marked ``rabbitmq`` are skipped, with the reason, when it is not there."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config, items):
    if os.environ.get("SEMC_TEST_AMQP_URL"):
        return
    skip = pytest.mark.skip(reason="no test RabbitMQ: run eval \"$(bash scripts/rabbitmq-up.sh)\" first")
    for item in items:
        if "rabbitmq" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def amqp_url() -> str:
    return os.environ["SEMC_TEST_AMQP_URL"]


@pytest.fixture
def stomp_url() -> str:
    env = os.environ
    return (f"stomp://{env['SEMC_TEST_STOMP_USER']}:{env['SEMC_TEST_STOMP_PASSWORD']}@{env['SEMC_TEST_STOMP_HOST']}:"
            f"{env['SEMC_TEST_STOMP_PORT']}/{env.get('SEMC_TEST_STOMP_VHOST', '')}")


@pytest.fixture
def topic_prefix() -> str:
    """A prefix of its own per test, so that no test sees another's messages."""
    return f"t{uuid.uuid4().hex[:10]}"


def broker_restart(*, stopped_hook=None) -> None:
    """Stop the test broker (data kept), call ``stopped_hook`` while it is down, start it again."""
    env = dict(os.environ, RMQ_KEEP_DATA="1")
    if "SEMC_TEST_RABBITMQ_DIR" in env:
        env["RMQ_DIR"] = env["SEMC_TEST_RABBITMQ_DIR"]
    subprocess.run(["bash", str(ROOT / "scripts" / "rabbitmq-down.sh")], env=env, check=True)
    if stopped_hook is not None:
        stopped_hook()
    subprocess.run(["bash", str(ROOT / "scripts" / "rabbitmq-up.sh")], env=env, check=True, stdout=subprocess.DEVNULL)
