"""Faults around a job on the real RabbitMQ: the owner deletes the account mid-job, storage goes away while
scoring, and the web node that took the job restarts before any worker ran.

Each runs a Celery worker in a thread of this process (solo pool) on its own queue, as test_celery_worker does.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from db import db
from models import Job, JobItem, Prediction
from services.storage import Storage
from tests.conftest import dispose
from tests.support.broker import (
    ACCOUNT_PASSWORD,
    BROKER_URL,
    account_headers,
    queue_depth,
    scored_items,
    wait_until,
    worker_in_thread,
)
from tests.support.jobs import fixture_images, submit, variants, wait_for_job, zip_of
from utils.errors import StorageUnavailable

pytestmark = pytest.mark.slow


class StorageOutage:
    """The app's storage, but the next `failures` photos it is asked to store fail as if the disk or bucket were
    away (job chunks are written before the outage and read normally)."""

    def __init__(self, inner: Storage, failures: int) -> None:
        self._inner = inner
        self.failures_left = failures
        self.refused = 0

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        if self.failures_left:
            self.failures_left -= 1
            self.refused += 1
            raise StorageUnavailable()
        self._inner.put_object(key, data, content_type)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def _count(app, *what) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(*what))
        db.session.remove()
    return count


def _status(app, job_id: str) -> str:
    with app.app_context():
        status = db.session.scalar(select(Job.status).where(Job.id == uuid.UUID(job_id)))
        db.session.remove()
    return status


def _stored_keys(app) -> list[str]:
    with app.app_context():
        return [listed.key for listed in app.extensions["storage"].list_objects()]


def _broker_app(build_app, queue: str, **settings: str):
    return build_app(CELERY_BROKER_URL=BROKER_URL, CELERY_QUEUE=queue, **settings)


def test_an_account_deleted_mid_job_takes_its_job_chunks_and_predictions_with_it(
    build_app, broker_queue, installed_modalities
):
    app = _broker_app(build_app, broker_queue, JOB_CHUNK_SIZE="4")
    client = app.test_client()
    headers = account_headers(client)
    entries = variants(fixture_images(["breast", "skin_lesion"]), 40)
    job_id = submit(client, headers, zip_of(entries)).get_json()["id"]

    with worker_in_thread(app):
        assert wait_until(lambda: scored_items(app, job_id) >= 4, timeout=90)
        deleted = client.delete("/api/v1/me", headers=headers, json={"password": ACCOUNT_PASSWORD})
        assert deleted.status_code == 204, deleted.get_json()
        # The chunks still queued are delivered, find their job gone and are let go.
        assert wait_until(lambda: queue_depth(broker_queue) == 0, timeout=90)
    assert scored_items(app, job_id) == 0
    assert (_count(app, Job), _count(app, JobItem), _count(app, Prediction)) == (0, 0, 0)
    assert _stored_keys(app) == [], "objects outlived the account"


def test_a_storage_outage_while_scoring_retries_the_chunk_and_loses_nothing(
    build_app, broker_queue, installed_modalities
):
    app = _broker_app(build_app, broker_queue, JOB_CHUNK_SIZE="4")
    client = app.test_client()
    headers = account_headers(client)
    entries = variants(fixture_images(["breast", "skin_lesion"]), 12)
    job_id = submit(client, headers, zip_of(entries)).get_json()["id"]  # queued: no worker runs yet
    outage = StorageOutage(app.extensions["storage"], failures=3)
    app.extensions["storage"] = outage

    with worker_in_thread(app):
        job = wait_for_job(client, headers, job_id, timeout=120)
    assert outage.refused == 3
    assert (job["status"], job["total"], job["scored"], job["failed"]) == ("done", 12, 12, 0)
    with app.app_context():
        distinct = db.session.scalar(select(func.count(func.distinct(Prediction.job_entry_sha256))))
    assert _count(app, Prediction) == distinct == 12
    keys = _stored_keys(app)
    assert not [key for key in keys if key.startswith("jobs/")], "a scored chunk was left behind"
    assert len(keys) == 12, keys  # one photo per prediction, nothing half-stored from the refused attempts


def test_a_job_waits_in_the_broker_while_the_web_node_that_took_it_restarts(
    build_app, broker_queue, installed_modalities
):
    settings = {"CELERY_BROKER_URL": BROKER_URL, "CELERY_QUEUE": broker_queue, "JOB_CHUNK_SIZE": "3"}
    first = build_app(**settings)
    client = first.test_client()
    headers = account_headers(client)
    job_id = submit(client, headers, zip_of(variants(fixture_images(["breast"]), 9))).get_json()["id"]
    shared = {
        "DATABASE_URL": first.config["SQLALCHEMY_DATABASE_URI"],
        "STORAGE_LOCAL_ROOT": first.config["STORAGE_LOCAL_ROOT"],
    }
    dispose(first)  # the node goes away; nothing of the job was scored
    assert queue_depth(broker_queue) == 3

    second = build_app(migrate=False, **settings, **shared)
    with worker_in_thread(second):
        assert wait_until(lambda: _status(second, job_id) == "done", timeout=120)
    assert scored_items(second, job_id) == _count(second, Prediction) == 9
