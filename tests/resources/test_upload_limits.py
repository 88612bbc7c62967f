"""Per-account upload limits: how often an account may upload (429), and how much it may keep in storage (413)."""

from __future__ import annotations

import io

import pytest

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
