"""Job workers score entries in batches: each entry gets the answer its upload alone would, and fails alone."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from db import db
from managers import job_scoring
from managers.models import ModelManager
from managers.predictions import PredictionManager
from models import JobItem, Prediction
from tests.support.jobs import fixture_images, submit, wait_for_job, zip_of


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _items(app, job_id: str) -> dict[str, JobItem]:
    with app.app_context():
        items = db.session.scalars(select(JobItem).where(JobItem.job_id == uuid.UUID(job_id)))
        return {item.name: item for item in items}


def test_each_entry_of_a_batch_gets_the_answer_of_its_upload_alone(app, client, patient, installed_modalities):
    images = fixture_images(installed_modalities)
    assert len(images) > job_scoring.BATCH_SIZE  # several batches, every installed modality mixed in them
    noise = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    refused = [("foreign/noise.png", _png(Image.fromarray(noise))), ("broken/cut.jpg", images[0][1][:200])]
    job = submit(client, patient.headers, zip_of([*images[:5], *refused, *images[5:]])).get_json()
    job = wait_for_job(client, patient.headers, job["id"])
    assert (job["status"], job["scored"], job["failed"]) == ("done", len(images), 2)

    items = _items(app, job["id"])
    assert items["foreign/noise.png"].error == "not_a_medical_image"
    assert items["broken/cut.jpg"].error is not None and items["broken/cut.jpg"].prediction_id is None
    with app.app_context():
        for name, data in images:
            prediction = db.session.get(Prediction, items[name].prediction_id)
            image, choice = PredictionManager.read_upload(None, data)
            alone = ModelManager.run(ModelManager.runner(choice.modality), image.image, heatmap=True)
            assert (prediction.modality, prediction.modality_detected) == (alone.modality, True), name
            assert (prediction.label, prediction.is_positive, prediction.certainty) == (
                alone.label,
                alone.is_positive,
                alone.certainty,
            ), name
            assert prediction.probabilities == pytest.approx(alone.probabilities, rel=1e-12, abs=0), name
            assert prediction.prediction_set == (list(alone.prediction_set) if alone.prediction_set else None), name
            assert prediction.activation_map == alone.activation_map.to_bytes(), name


def test_entries_past_the_quota_fail_alone_and_the_others_are_scored(app, client, patient, monkeypatch):
    images = fixture_images(["skin_lesion"])
    sizes = sorted(len(data) for _name, data in images)
    # Room for a few of them: the batch as a whole does not fit, so each entry is looked at on its own.
    monkeypatch.setitem(app.config, "STORAGE_QUOTA_BYTES", sum(sizes[:2]) + sizes[0] // 2)
    job = submit(client, patient.headers, zip_of(images)).get_json()
    job = wait_for_job(client, patient.headers, job["id"])
    assert job["status"] == "done" and job["scored"] + job["failed"] == job["total"] == len(images)
    assert 1 <= job["scored"] < len(images)
    items = _items(app, job["id"])
    assert {item.error for item in items.values() if item.status == "failed"} == {"storage_quota_exceeded"}
    with app.app_context():
        kept = db.session.scalars(select(Prediction.stored_bytes).where(Prediction.owner_id == uuid.UUID(patient.id)))
        assert sum(kept) <= app.config["STORAGE_QUOTA_BYTES"]
