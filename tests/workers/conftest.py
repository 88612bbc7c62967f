"""Fixtures for the worker tests: a fresh queue on the real broker."""

from __future__ import annotations

import os
import uuid

import kombu
import pytest

from tests.support.broker import BROKER_URL


@pytest.fixture
def broker_queue():
    """A fresh queue name on a reachable broker; the queue is deleted afterwards."""
    try:
        with kombu.Connection(BROKER_URL, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        if os.environ.get("MEDSIGHT_REQUIRE_RABBITMQ", "").strip() not in ("", "0"):
            pytest.fail(f"RabbitMQ is not reachable at {BROKER_URL}: {exc}")
        pytest.skip(f"RabbitMQ is not reachable at {BROKER_URL}")
    name = f"medsight-test-{uuid.uuid4().hex[:12]}"
    yield name
    with kombu.Connection(BROKER_URL) as connection:
        connection.default_channel.queue_delete(name)
