"""Idempotency-Key on uploads: a retried upload returns the first result instead of a second copy."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from db import db
from models import IdempotencyKey, Prediction, utcnow
from tests.resources.helpers import assert_error
from tests.support.images import sample_image


def _upload(client, account, key=None, modality="skin_lesion"):
    headers = dict(account.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    data = {"modality": modality, "file": (io.BytesIO(sample_image(modality).read_bytes()), "a.jpg")}
    return client.post("/api/v1/predictions", data=data, headers=headers, content_type="multipart/form-data")


def _stored_objects(app) -> int:
    root = app.config["STORAGE_LOCAL_ROOT"]
    from pathlib import Path

    return sum(1 for path in Path(root).rglob("*") if path.is_file() and ".content-types" not in path.parts)


def test_the_same_key_twice_gives_the_first_result_and_stores_nothing_more(client, app, patient):
    first = _upload(client, patient, key="retry-me-1")
    assert first.status_code == 201
    objects = _stored_objects(app)
    second = _upload(client, patient, key="retry-me-1")
    assert second.status_code == 200 and second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json()["id"] == first.get_json()["id"]
    assert client.get("/api/v1/predictions", headers=patient.headers).get_json()["total"] == 1
    assert _stored_objects(app) == objects


def test_without_a_key_every_upload_is_kept(client, patient):
    assert _upload(client, patient).status_code == 201
    assert _upload(client, patient).status_code == 201
    assert client.get("/api/v1/predictions", headers=patient.headers).get_json()["total"] == 2


def test_keys_are_per_user(client, patient, make_account):
    other = make_account()
    mine, theirs = _upload(client, patient, key="shared"), _upload(client, other, key="shared")
    assert mine.status_code == theirs.status_code == 201
    assert mine.get_json()["id"] != theirs.get_json()["id"]


def test_a_key_older_than_a_day_makes_a_new_prediction(client, app, patient):
    first = _upload(client, patient, key="old-key")
    with app.app_context():
        db.session.execute(sa.update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    again = _upload(client, patient, key="old-key")
    assert again.status_code == 201 and again.get_json()["id"] != first.get_json()["id"]
    assert _upload(client, patient, key="old-key").get_json()["id"] == again.get_json()["id"]


def test_deleting_the_prediction_frees_its_key(client, patient):
    first = _upload(client, patient, key="k")
    assert client.delete(f"/api/v1/predictions/{first.get_json()['id']}", headers=patient.headers).status_code == 204
    assert _upload(client, patient, key="k").status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\u0001key"])
def test_a_malformed_key_is_422(client, patient, key):
    response = _upload(client, patient, key=key)
    assert_error(response, 422, "validation_error")


def test_a_refused_upload_leaves_its_key_unused(client, patient):
    headers = {**patient.headers, "Idempotency-Key": "try-again"}
    refused = client.post(
        "/api/v1/predictions",
        data={"modality": "skin_lesion", "file": (io.BytesIO(b"not an image"), "a.jpg")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert refused.status_code == 415
    assert _upload(client, patient, key="try-again").status_code == 201


def test_a_race_on_one_key_keeps_one_prediction(client, app, patient):
    """The loser of a race (simulated: its key row already there when it commits) answers with the winner's."""
    first = _upload(client, patient, key="race")
    from managers import idempotency

    real = idempotency._earlier
    calls = {"n": 0}

    def miss_once(owner, key):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(owner, key)

    try:
        idempotency._earlier = miss_once
        second = _upload(client, patient, key="race")
    finally:
        idempotency._earlier = real
    assert second.status_code == 200 and second.get_json()["id"] == first.get_json()["id"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Prediction)) == 1
