"""Celery workers on the real RabbitMQ: a job scored end to end, and a worker killed mid-chunk whose chunk
another worker finishes with every entry scored exactly once.

Each test uses its own uniquely named queue on the broker at MEDSIGHT_TEST_AMQP_URL (default: RabbitMQ on
127.0.0.1:5672 as guest) and deletes it afterwards. Without a reachable broker the tests are skipped, or fail
where MEDSIGHT_REQUIRE_RABBITMQ=1.
"""

from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import func, select

from db import db
from models import JobItem, Prediction
from tests.support.broker import (
    BROKER_URL,
    account_headers,
    scored_items,
    wait_until,
    worker_environment,
    worker_in_thread,
    worker_process,
)
from tests.support.jobs import fixture_images, submit, variants, wait_for_job, zip_of

pytestmark = pytest.mark.slow


def test_a_celery_worker_on_rabbitmq_scores_a_job(build_app, broker_queue, make_account, installed_modalities):
    app = build_app(CELERY_BROKER_URL=BROKER_URL, CELERY_QUEUE=broker_queue, JOB_CHUNK_SIZE="2")
    client = app.test_client()
    headers = account_headers(client)
    images = fixture_images(["breast", "skin_lesion"])[:5]
    # A generous shutdown: on a busy machine the solo pool may still be scoring when the block ends.
    with worker_in_thread(app, shutdown_timeout=120):
        response = submit(client, headers, zip_of([*images, ("readme.txt", b"text")]))
        assert response.status_code == 202, response.get_json()
        # The worker may already have taken the first chunk by the time the answer is written.
        assert response.get_json()["status"] in ("queued", "running")
        job = wait_for_job(client, headers, response.get_json()["id"])
    assert (job["status"], job["total"], job["scored"], job["failed"]) == ("done", 6, 5, 1)
    history = client.get(f"/api/v1/predictions?job_id={job['id']}", headers=headers).get_json()
    assert history["total"] == 5


def test_a_chunk_of_a_killed_worker_is_finished_by_another_exactly_once(build_app, broker_queue, tmp_path):
    entries = variants(fixture_images(["breast", "skin_lesion", "chest_xray"]), 150)
    settings = {"CELERY_BROKER_URL": BROKER_URL, "CELERY_QUEUE": broker_queue, "JOB_CHUNK_SIZE": "1000"}
    app = build_app(**settings)
    client = app.test_client()
    headers = account_headers(client)
    environment = worker_environment(app, tmp_path)
    job_id = submit(client, headers, zip_of(entries)).get_json()["id"]

    first = worker_process(environment, tmp_path / "first.log")
    try:
        # Generous: the worker first starts Python, loads the models and connects, on a machine that may be busy.
        scored = wait_until(lambda: 5 <= scored_items(app, job_id), timeout=240)
        assert scored, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    partly = scored_items(app, job_id)
    assert partly < len(entries), "the first worker finished before it could be killed"

    second = worker_process(environment, tmp_path / "second.log")
    try:
        job = wait_for_job(client, headers, job_id, timeout=300)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert (job["status"], job["total"], job["scored"], job["failed"]) == ("done", 150, 150, 0)
    with app.app_context():
        predictions = db.session.scalar(select(func.count()).select_from(Prediction))
        distinct = db.session.scalar(select(func.count(func.distinct(Prediction.job_entry_sha256))))
        linked = db.session.scalar(select(func.count(func.distinct(JobItem.prediction_id))))
    assert predictions == distinct == linked == 150
