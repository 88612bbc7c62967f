"""Helpers for tests on the real broker: where it is, how deep a queue is, an account to submit jobs with."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import kombu
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select

from config import PROJECT_ROOT
from db import db
from models import JobItem

BROKER_URL = os.environ.get("MEDSIGHT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ACCOUNT_PASSWORD = "correct-horse-42"
WAKE_S = 0.05  # how often the in-process worker's event loop wakes up, whatever it is waiting for


@contextmanager
def worker_in_thread(app, shutdown_timeout: float = 60) -> Iterator[object]:
    """A Celery worker (solo pool) in a thread of this process, consuming the app's queue until the block ends.

    Its event loop sleeps until its next timer, at most 10 s, when no socket wakes it: long enough to miss
    the next chunk already read from the socket, and the stop signal at the end. A timer that does nothing
    every WAKE_S makes it look at both at once.
    """
    with start_worker(
        app.extensions["celery"],
        pool="solo",
        perform_ping_check=False,
        queues=[app.config["CELERY_QUEUE"]],
        shutdown_timeout=shutdown_timeout,
    ) as worker:
        worker.timer.call_repeatedly(WAKE_S, _wake)
        yield worker


def _wake() -> None:
    """Nothing: firing is the point (see worker_in_thread)."""


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


def worker_environment(app, folder) -> dict[str, str]:
    """The environment of a worker process that serves app's queue on app's database and photo folder."""
    return {
        **os.environ,
        "MEDSIGHT_ENV": "testing",
        "CELERY_BROKER_URL": app.config["CELERY_BROKER_URL"],
        "CELERY_QUEUE": app.config["CELERY_QUEUE"],
        "JOB_CHUNK_SIZE": str(app.config["JOB_CHUNK_SIZE"]),
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "STORAGE_LOCAL_ROOT": app.config["STORAGE_LOCAL_ROOT"],
        "MEDSIGHT_INSTANCE_PATH": str(folder / "worker-instance"),
    }


def worker_process(environment: dict[str, str], log_path) -> subprocess.Popen:
    """`celery worker` (solo pool) in a process group of its own, as an operator starts one; its output in log_path."""
    command = [sys.executable, "-m", "celery", "-A", "make_celery", "worker", "--pool", "solo"]
    command += ["--queues", environment["CELERY_QUEUE"], "--loglevel", "INFO", "--without-heartbeat"]
    return subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
