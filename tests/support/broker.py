"""Helpers for tests on the real broker: where it is, how deep a queue is, an account to submit jobs with."""

from __future__ import annotations

import os
import time
import uuid

import kombu
from sqlalchemy import func, select

from db import db
from models import JobItem

BROKER_URL = os.environ.get("MEDSIGHT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ACCOUNT_PASSWORD = "correct-horse-42"


def queue_depth(name: str) -> int:
    """Messages waiting in the queue (not those a worker holds unacknowledged)."""
    with kombu.Connection(BROKER_URL) as connection:
        return connection.default_channel.queue_declare(name, passive=True).message_count


def account_headers(client) -> dict[str, str]:
    """Register a fresh account through the API and log in: its bearer header."""
    credentials = {"email": f"batch-{uuid.uuid4().hex[:8]}@example.org", "password": ACCOUNT_PASSWORD}
    assert client.post("/api/v1/auth/register", json=credentials).status_code == 201
    token = client.post("/api/v1/auth/login", json=credentials).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def scored_items(app, job_id: str) -> int:
    """How many of the job's items are scored, read in a session of its own."""
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).where(JobItem.job_id == uuid.UUID(job_id), JobItem.status == "scored")
        )
        db.session.remove()
    return count


def wait_until(condition, timeout: float) -> bool:
    """Whether condition() came true within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
