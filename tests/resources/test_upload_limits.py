"""Per-account upload limits: how often an account may upload (429), and how much it may keep in storage (413)."""

from __future__ import annotations

import io
import uuid

import pytest
from sqlalchemy import event, update

from db import db
from managers.models import ModelManager
from managers.upload_quota import KnownUsage
from models import PredictionCount
from tests.resources.helpers import assert_error, bearer
from tests.support.images import sample_image
from tests.support.predictions import stored_files

PREDICTIONS = "/api/v1/predictions"


@pytest.fixture
def limited_app(build_app):
    return build_app(UPLOAD_RATE_LIMIT="2 per minute")


def _account(client, email: str) -> dict:
    password = "correct-horse-42"
    assert client.post("/api/v1/auth/register", json={"email": email, "password": password}).status_code == 201
    tokens = client.post("/api/v1/auth/login", json={"email": email, "password": password}).get_json()
    return bearer(tokens["access_token"])


def _post(client, headers, url=PREDICTIONS, data: bytes | None = None):
    body = {"file": (io.BytesIO(data if data is not None else sample_image("skin_lesion").read_bytes()), "a.jpg")}
    return client.post(url, data=body, headers=headers, content_type="multipart/form-data")


def test_uploads_past_the_account_rate_are_429_with_retry_after(limited_app):
    client = limited_app.test_client()
    headers = _account(client, "quick@example.org")
    assert _post(client, headers).status_code == 201
    assert _post(client, headers, data=b"not an image").status_code == 415  # refused uploads count too
    refused = _post(client, headers)
    assert_error(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) > 0


def test_the_api_and_the_original_apps_endpoint_share_the_account_limit(limited_app):
    client = limited_app.test_client()
    headers = _account(client, "both@example.org")
    assert _post(client, headers).status_code == 201
    assert _post(client, headers, url="/predict").status_code == 200
    assert_error(_post(client, headers, url="/predict"), 429, "too_many_requests")
    assert_error(_post(client, headers), 429, "too_many_requests")


def test_the_limit_is_per_account(limited_app):
    client = limited_app.test_client()
    busy, other = _account(client, "busy@example.org"), _account(client, "other@example.org")
    for _ in range(2):
        assert _post(client, busy).status_code == 201
    assert_error(_post(client, busy), 429, "too_many_requests")
    assert _post(client, other).status_code == 201


def test_an_upload_past_the_storage_quota_is_413_and_keeps_nothing(
    app, client, patient, upload, storage_root, monkeypatch
):
    photo = sample_image("skin_lesion").read_bytes()
    monkeypatch.setitem(app.config, "STORAGE_QUOTA_BYTES", int(len(photo) * 1.5))
    first = upload(patient, "skin_lesion", data=photo, filename="a.jpg")
    assert first.status_code == 201
    kept = stored_files(storage_root)

    error = assert_error(upload(patient, "skin_lesion", data=photo, filename="b.jpg"), 413, "storage_quota_exceeded")
    assert "storage quota of" in error["message"] and "Delete" in error["message"]
    assert f"This upload ({round(len(photo) / 1024)} KB)" in error["message"], error["message"]
    assert error["details"] == {
        "quota_bytes": int(len(photo) * 1.5),
        "used_bytes": len(photo),
        "upload_bytes": len(photo),
    }
    assert stored_files(storage_root) == kept

    # Deleting a result frees its space.
    assert client.delete(f"{PREDICTIONS}/{first.get_json()['id']}", headers=patient.headers).status_code == 204
    assert upload(patient, "skin_lesion", data=photo, filename="c.jpg").status_code == 201


def test_the_quota_counts_each_account_on_its_own(app, patient, make_account, upload, monkeypatch):
    photo = sample_image("skin_lesion").read_bytes()
    monkeypatch.setitem(app.config, "STORAGE_QUOTA_BYTES", int(len(photo) * 1.5))
    assert upload(patient, "skin_lesion", data=photo, filename="a.jpg").status_code == 201
    assert upload(make_account(), "skin_lesion", data=photo, filename="a.jpg").status_code == 201


# -- the early check's hint: the usage this process last admitted (managers.upload_quota.KnownUsage) ------------


@pytest.fixture
def model_runs(monkeypatch) -> list[str]:
    """The modalities the model ran for, in order, during the test."""
    runs: list[str] = []
    real_run = ModelManager.run

    def counting_run(runner, image, **options):
        runs.append(runner.name)
        return real_run(runner, image, **options)

    monkeypatch.setattr(ModelManager, "run", staticmethod(counting_run))
    return runs


def _grow_tally(app, account, stored_bytes: int) -> None:
    """What uploads recorded by another process (another worker, another node) do to the account's tally."""
    with app.app_context():
        db.session.execute(
            update(PredictionCount)
            .where(PredictionCount.owner_id == uuid.UUID(account.id))
            .values(stored_bytes=PredictionCount.stored_bytes + stored_bytes)
        )
        db.session.commit()


def test_a_full_account_is_refused_before_the_model_runs(app, patient, upload, model_runs, monkeypatch):
    photo = sample_image("skin_lesion").read_bytes()
    monkeypatch.setitem(app.config, "STORAGE_QUOTA_BYTES", int(len(photo) * 1.5))
    assert upload(patient, "skin_lesion", data=photo, filename="a.jpg").status_code == 201
    assert len(model_runs) == 1

    assert_error(upload(patient, "skin_lesion", data=photo, filename="b.jpg"), 413, "storage_quota_exceeded")
    assert len(model_runs) == 1, "the model ran for an upload the early check could refuse"


def test_uploads_another_process_recorded_since_are_counted_when_the_record_is_written_once(
    app, patient, upload, storage_root, model_runs, monkeypatch
):
    photo = sample_image("skin_lesion").read_bytes()
    monkeypatch.setitem(app.config, "STORAGE_QUOTA_BYTES", len(photo) * 10)
    assert upload(patient, "skin_lesion", data=photo, filename="a.jpg").status_code == 201
    kept = stored_files(storage_root)
    _grow_tally(app, patient, len(photo) * 9)  # full now; this process still knows 1 photo's worth: room for more

    error = assert_error(upload(patient, "skin_lesion", data=photo, filename="b.jpg"), 413, "storage_quota_exceeded")

    assert error["details"]["used_bytes"] == len(photo) * 10
    assert len(model_runs) == 2, "the hint let the upload past the early check; the decision was the record's"
    assert stored_files(storage_root) == kept

    # The refusal corrected this process's figure: the next upload is refused before the model again.
    assert_error(upload(patient, "skin_lesion", data=photo, filename="c.jpg"), 413, "storage_quota_exceeded")
    assert len(model_runs) == 2


def test_an_upload_that_fits_beside_the_known_usage_skips_the_early_read(app, patient, upload, monkeypatch):
    photo = sample_image("skin_lesion").read_bytes()
    monkeypatch.setitem(app.config, "STORAGE_QUOTA_BYTES", len(photo) * 10)
    assert upload(patient, "skin_lesion", data=photo, filename="a.jpg").status_code == 201
    reads: list[str] = []

    def on_statement(_conn, _cursor, statement, *_args) -> None:
        if "prediction_counts" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        assert upload(patient, "skin_lesion", data=photo, filename="b.jpg").status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert len(reads) == 1, reads  # admit's, with the account's row held; none before the model


def test_the_known_usage_of_too_many_accounts_starts_again_rather_than_grow():
    known = KnownUsage(max_accounts=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    known.remember(first, 10)
    known.remember(second, 20)
    known.remember(second, 25)  # an account it knows already takes no new place
    assert (known.get(first), known.get(second)) == (10, 25)

    known.remember(third, 30)

    assert (known.get(first), known.get(second), known.get(third)) == (None, None, 30)
