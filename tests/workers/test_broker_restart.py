"""The broker restarted in the middle of a job: the worker reconnects, the chunks wait on the broker's disk,
the chunk that was being scored is delivered again, and the job ends with every entry scored exactly once.

The job runs on a RabbitMQ node of the test's own (tests/support/rabbitmq.py), so that stopping it
touches no other test's broker, and is scored by a `celery worker` process, as an operator runs one.
"""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import func, select

from db import db
from models import JobItem, Prediction
from tests.support.broker import account_headers, scored_items, wait_until, worker_environment, worker_process
from tests.support.jobs import fixture_images, submit, variants, wait_for_job, zip_of

pytestmark = pytest.mark.slow

ENTRIES = 60
CHUNK_SIZE = 4  # 15 chunks: most of them still wait on the broker when it goes away


def test_a_broker_restarted_mid_job_loses_nothing_and_scores_each_entry_once(build_app, private_broker, tmp_path):
    app = build_app(CELERY_BROKER_URL=private_broker.url, CELERY_QUEUE="medsight.jobs", JOB_CHUNK_SIZE=str(CHUNK_SIZE))
    client = app.test_client()
    headers = account_headers(client)
    job_id = submit(client, headers, zip_of(variants(fixture_images(["breast", "skin_lesion"]), ENTRIES)))
    assert job_id.status_code == 202, job_id.get_json()
    job_id = job_id.get_json()["id"]

    worker = worker_process(worker_environment(app, tmp_path), tmp_path / "worker.log")
    try:
        # Generous: the worker first starts Python, loads the models and connects, on a machine that may be busy.
        assert wait_until(lambda: scored_items(app, job_id) >= CHUNK_SIZE, timeout=240), _tail(tmp_path)
        private_broker.restart()
        assert scored_items(app, job_id) < ENTRIES, "the job ended before the broker could be restarted"
        job = wait_for_job(client, headers, job_id, timeout=300)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert (job["status"], job["total"], job["scored"], job["failed"]) == ("done", ENTRIES, ENTRIES, 0), _tail(tmp_path)
    with app.app_context():
        predictions = db.session.scalar(select(func.count()).select_from(Prediction))
        distinct = db.session.scalar(select(func.count(func.distinct(Prediction.job_entry_sha256))))
        linked = db.session.scalar(select(func.count(func.distinct(JobItem.prediction_id))))
        keys = [listed.key for listed in app.extensions["storage"].list_objects()]
    assert predictions == distinct == linked == ENTRIES
    assert not [key for key in keys if key.startswith("jobs/")], "a scored chunk was left behind"
    assert len(keys) == ENTRIES  # one photo each: nothing stored twice by the chunk delivered again


def _tail(folder) -> str:
    return (folder / "worker.log").read_text()[-3000:]
