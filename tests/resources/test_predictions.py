"""/api/v1/predictions and POST /predict: upload, history, one record, its images, delete, as users see them."""

from __future__ import annotations

import io
import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import event, func, select

from cnn_model.modalities import MODALITIES, get_spec
from cnn_model.runtime import ARTIFACTS_DIR
from constants import PAGE_NUMBER_MAX, PAGE_SIZE_MAX, PREDICTION_NOTE_MAX_LENGTH, AuditAction
from db import db
from models import AuditEvent, Prediction
from resources.api import SPOOL_IN_MEMORY_BYTES, TEMP_FILES_DIR, UploadRequest
from tests.resources.helpers import assert_error
from tests.support.images import sample_image
from tests.support.predictions import open_temp_files, spilling_png, stored_files, temp_files_listed


def count_predictions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Prediction))


def served_threshold(modality_name):
    """The malignant/abnormal threshold of the shipped model (None: the top-1 class decides)."""
    card = json.loads((ARTIFACTS_DIR / modality_name / "card.json").read_text())
    return (card.get("decision") or {}).get("positive_threshold")


# -- create -----------------------------------------------------------------------------------


@pytest.mark.parametrize("modality_name", MODALITIES)
def test_each_modality_classifies_a_real_image(predict, patient, installed_modalities, modality_name):
    assert modality_name in installed_modalities, f"no model shipped for {modality_name}"
    spec = get_spec(modality_name)
    body = predict(patient, modality_name, sample_image(modality_name, spec.positive_classes[0]))
    assert body["modality"] == modality_name
    assert body["label"] in spec.class_names
    assert set(body["probabilities"]) == set(spec.class_names)
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-3
    assert body[spec.positive_flag] is body["is_positive"]


def test_upload_answers_201_with_the_prediction_contract(predict, patient, modality):
    body = predict(patient, modality, note="left side, since March")
    spec = get_spec(modality)
    assert len(body["id"]) == 36  # a UUID, not a sequence
    assert body["label"] in spec.class_names and body["display_name"] == spec.class_spec(body["label"]).display_name
    assert 0 <= body["confidence"] <= 1 and body["confidence"] == pytest.approx(body["probabilities"][body["label"]])
    assert body["confidence"] == max(body["probabilities"].values())
    assert body["positive_probability"] == pytest.approx(sum(body["probabilities"][c] for c in spec.positive_classes))
    threshold = served_threshold(modality)
    expected_flag = (
        body["label"] in spec.positive_classes if threshold is None else body["positive_probability"] >= threshold
    )
    assert body[spec.positive_flag] == expected_flag == body["is_positive"]
    other_flag = {"is_malignant", "is_abnormal"} - {spec.positive_flag}
    assert not other_flag & set(body)
    assert set(body["class_descriptions"]) == set(spec.class_names)
    assert all(text.endswith(".") for text in body["class_descriptions"].values())
    assert set(body["model"]) == {"name", "version", "sha256"} and len(body["model"]["sha256"]) == 64
    assert body["note"] == "left side, since March"
    assert body["image_url"] == f"/api/v1/predictions/{body['id']}/image"
    assert body["heatmap_url"] == f"/api/v1/predictions/{body['id']}/heatmap"
    assert "not a diagnosis" in body["disclaimer"]
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


def test_upload_accepts_the_image_field_name(upload, patient, modality):
    response = upload(patient, modality, field="image")
    assert response.status_code == 201, response.get_json()


def test_upload_is_audited(app, predict, patient, modality):
    body = predict(patient, modality)
    with app.app_context():
        event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.PREDICTION_CREATE))
        assert event_.target_id == body["id"] and str(event_.actor_id) == patient.id


def test_upload_without_a_token_is_401(client, modality):
    path = sample_image(modality)
    response = client.post("/api/v1/predictions", data={"modality": modality, "file": (path.open("rb"), path.name)})
    assert_error(response, 401)


def test_missing_file_is_422_naming_the_field(client, patient, modality):
    response = client.post("/api/v1/predictions", data={"modality": modality}, headers=patient.headers)
    assert "file" in assert_error(response, 422, "validation_error")["details"]


@pytest.mark.parametrize("url", ["/api/v1/predictions", "/predict"])
def test_empty_file_input_is_422_not_500(client, patient, modality, url):
    """What a browser sends for a file input left empty: a part with no filename and no bytes."""
    response = client.post(
        url,
        data={"modality": modality, "file": (io.BytesIO(b""), "")},
        headers=patient.headers,
        content_type="multipart/form-data",
    )
    assert assert_error(response, 422)["code"] in {"validation_error", "empty_file"}


@pytest.mark.parametrize("url", ["/api/v1/predictions", "/predict"])
@pytest.mark.parametrize("field", ["file", "image"])
def test_file_sent_as_a_text_field_is_422_asking_for_an_upload(client, patient, modality, url, field):
    response = client.post(
        url,
        data={"modality": modality, field: "lesion.jpg"},
        headers=patient.headers,
        content_type="multipart/form-data",
    )
    details = assert_error(response, 422, "validation_error")["details"]
    assert "file upload" in " ".join(details[field])


def test_unknown_modality_is_422_listing_the_valid_ones(upload, patient, modality):
    response = upload(patient, "dental", sample_image(modality))
    message = " ".join(assert_error(response, 422, "validation_error")["details"]["modality"])
    assert all(name in message for name in MODALITIES)


def test_text_file_named_jpg_is_415(app, upload, patient, modality):
    response = upload(patient, modality, data=b"just some text, not a picture\n" * 10, filename="lesion.jpg")
    assert_error(response, 415, "unsupported_media_type")
    assert count_predictions(app) == 0


def test_file_over_the_upload_cap_is_413(app, upload, patient, modality, monkeypatch):
    path = sample_image(modality)
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", path.stat().st_size - 1)
    assert_error(upload(patient, modality, path), 413, "payload_too_large")
    assert count_predictions(app) == 0


def test_body_over_the_request_cap_is_413_before_it_is_read(app, upload, patient, modality, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    assert_error(upload(patient, modality), 413)


def test_note_over_500_characters_is_422(upload, patient, modality):
    response = upload(patient, modality, note="x" * (PREDICTION_NOTE_MAX_LENGTH + 1))
    assert "note" in assert_error(response, 422, "validation_error")["details"]


def test_failed_uploads_leave_nothing_behind(app, upload, patient, modality, storage_root):
    spilled = b"not an image\n" * (SPOOL_IN_MEMORY_BYTES // 10)  # past the spool: a file in temp_files/
    assert_error(upload(patient, modality, data=spilled, filename="x.png"), 415)
    assert_error(upload(patient, modality, data=b"", filename="empty.jpg"), 422, "empty_file")
    assert count_predictions(app) == 0
    assert stored_files(storage_root) == []
    assert open_temp_files() == []


def test_large_uploads_spill_into_temp_files_invisibly(app, upload, patient, modality):
    """Uploads past the in-memory spool go to temp_files/ as anonymous files: nothing is ever left there."""
    png = spilling_png(modality)
    with app.test_request_context():
        stream = UploadRequest({})._get_file_stream(len(png), "image/png", "big.png")
        stream.write(png)
        assert os.readlink(f"/proc/self/fd/{stream.fileno()}").startswith(str(TEMP_FILES_DIR))
        assert len(open_temp_files()) == 1 and temp_files_listed() == []  # held open, yet nameless
        stream.close()
    assert open_temp_files() == []
    response = upload(patient, modality, data=png, filename="big.png")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["image"]["content_type"] == "image/png"
    assert open_temp_files() == []  # the request's spool file was closed with the request


# -- history ----------------------------------------------------------------------------------


def test_history_lists_own_predictions_newest_first_with_total(client, predict, patient, modality):
    made = [predict(patient, modality)["id"] for _ in range(3)]
    body = client.get("/api/v1/predictions", headers=patient.headers).get_json()
    assert body["total"] == 3 and body["page"] == 1 and body["pages"] == 1
    assert [item["id"] for item in body["items"]] == made[::-1]


def test_history_filters(app, client, predict, patient, modality):
    first = predict(patient, modality)
    second = predict(patient, modality)
    spec = get_spec(modality)

    def ids(**query):
        response = client.get("/api/v1/predictions", query_string=query, headers=patient.headers)
        assert response.status_code == 200, response.get_json()
        return {item["id"] for item in response.get_json()["items"]}

    other = next(m for m in MODALITIES if m != modality)
    assert ids(modality=modality) == {first["id"], second["id"]} and ids(modality=other) == set()
    assert ids(label=first["label"]) >= {first["id"]}
    flagged = {p["id"] for p in (first, second) if p["is_positive"]}
    assert ids(is_positive="true") == flagged
    assert ids(**{spec.positive_flag: "false"}) == {first["id"], second["id"]} - flagged
    created = datetime.fromisoformat(second["created_at"])
    assert second["id"] in ids(created_after=(created - timedelta(seconds=1)).isoformat())
    assert ids(created_before=datetime(2000, 1, 1, tzinfo=UTC).isoformat()) == set()


def test_unknown_modality_filter_is_422(client, patient):
    response = client.get("/api/v1/predictions?modality=dental", headers=patient.headers)
    assert_error(response, 422, "validation_error")


def test_page_beyond_the_end_is_empty_with_the_total(client, predict, patient, modality):
    predict(patient, modality)
    predict(patient, modality)
    body = client.get("/api/v1/predictions?page=3&per_page=1", headers=patient.headers).get_json()
    assert body["items"] == [] and body["total"] == 2 and body["pages"] == 2
    second = client.get("/api/v1/predictions?page=2&per_page=1", headers=patient.headers).get_json()
    assert len(second["items"]) == 1


def test_history_continues_by_cursor_newest_first(client, predict, patient, modality):
    made = [predict(patient, modality)["id"] for _ in range(3)]
    first = client.get("/api/v1/predictions?per_page=2", headers=patient.headers).get_json()
    assert first["page"] == 1 and first["total"] == 3 and first["next_cursor"]
    response = client.get(
        "/api/v1/predictions", query_string={"per_page": 2, "cursor": first["next_cursor"]}, headers=patient.headers
    )
    assert response.status_code == 200, response.get_json()
    second = response.get_json()
    assert second["page"] is None and second["total"] == 3 and second["next_cursor"] is None
    assert [item["id"] for item in first["items"] + second["items"]] == made[::-1]


@pytest.mark.parametrize("cursor", ["garbage!", "bm90IGEgY3Vyc29y", "x" * 300])
def test_invalid_cursor_is_422(client, patient, cursor):
    error = assert_error(
        client.get("/api/v1/predictions", query_string={"cursor": cursor}, headers=patient.headers),
        422,
        "validation_error",
    )
    assert "cursor" in error["details"]


def test_cursor_with_a_page_number_is_422(client, predict, patient, modality):
    predict(patient, modality)
    predict(patient, modality)
    cursor = client.get("/api/v1/predictions?per_page=1", headers=patient.headers).get_json()["next_cursor"]
    response = client.get("/api/v1/predictions", query_string={"cursor": cursor, "page": 2}, headers=patient.headers)
    assert "cursor" in assert_error(response, 422, "validation_error")["details"]


@pytest.mark.parametrize(
    "query",
    [
        f"per_page={PAGE_SIZE_MAX + 1}",
        "per_page=0",
        "per_page=99999999999999999999",
        "page=0",
        "page=x",
        f"page={PAGE_NUMBER_MAX + 1}",
        "page=99999999999999999999",
    ],
)
@pytest.mark.parametrize(
    "url", ["/api/v1/predictions", "/api/v1/admin/predictions", "/api/v1/admin/users", "/api/v1/admin/audit"]
)
def test_bad_paging_is_422(client, admin, url, query):
    assert_error(client.get(f"{url}?{query}", headers=admin.headers), 422, "validation_error")


def test_the_deepest_page_allowed_is_empty_not_an_error(client, patient):
    response = client.get(
        f"/api/v1/predictions?page={PAGE_NUMBER_MAX}&per_page={PAGE_SIZE_MAX}", headers=patient.headers
    )
    assert response.status_code == 200 and response.get_json()["items"] == []


def count_statements(app, client, url: str, headers: dict) -> int:
    """How many SQL statements one GET of url runs."""
    with app.app_context():
        engine = db.engine
    executed = []
    listener = lambda *args: executed.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(url, headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(executed)


@pytest.mark.parametrize("url, as_admin", [("/api/v1/predictions", False), ("/api/v1/admin/predictions", True)])
def test_lists_run_a_fixed_number_of_queries(app, client, predict, patient, make_account, modality, url, as_admin):
    """No N+1: a list costs the same number of SQL statements for 1 item as for 4."""
    reader = make_account(role="admin") if as_admin else patient
    predict(patient, modality)
    one = count_statements(app, client, url, reader.headers)
    for _ in range(3):
        predict(patient, modality)
    assert count_statements(app, client, url, reader.headers) == one


# -- one record, its images, delete -----------------------------------------------------------


def test_get_one_prediction(client, predict, patient, modality):
    made = predict(patient, modality)
    response = client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers)
    assert response.status_code == 200 and response.get_json() == made


def test_image_is_the_uploaded_bytes_with_their_content_type(client, predict, patient, modality):
    path = sample_image(modality)
    made = predict(patient, modality, path)
    response = client.get(made["image_url"], headers=patient.headers)
    assert response.status_code == 200
    assert response.data == path.read_bytes() and response.mimetype == "image/jpeg"
    assert "no-store" in response.headers["Cache-Control"]


def test_heatmap_is_a_png_the_size_of_the_image(client, predict, patient, modality):
    path = sample_image(modality)
    made = predict(patient, modality, path)
    response = client.get(made["heatmap_url"], headers=patient.headers)
    assert response.status_code == 200 and response.mimetype == "image/png"
    heatmap = Image.open(io.BytesIO(response.data))
    assert heatmap.format == "PNG"
    original = Image.open(path)
    assert heatmap.size[0] / heatmap.size[1] == pytest.approx(original.size[0] / original.size[1], rel=0.02)


def test_delete_removes_row_objects_and_is_audited(app, client, predict, patient, modality, storage_root):
    made = predict(patient, modality)
    assert stored_files(storage_root)
    response = client.delete(f"/api/v1/predictions/{made['id']}", headers=patient.headers)
    assert response.status_code == 204
    assert_error(client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers), 404)
    assert stored_files(storage_root) == []
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == made["id"])))
    assert AuditAction.PREDICTION_DELETE in actions


def test_unknown_id_is_404(client, patient):
    response = client.get("/api/v1/predictions/00000000-0000-4000-8000-000000000000", headers=patient.headers)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method, suffix", [("get", ""), ("get", "/image"), ("get", "/heatmap"), ("delete", "")])
def test_other_users_prediction_is_404(client, predict, make_account, patient, modality, method, suffix):
    made = predict(patient, modality)
    stranger = make_account()
    response = getattr(client, method)(f"/api/v1/predictions/{made['id']}{suffix}", headers=stranger.headers)
    assert_error(response, 404, "not_found")
    assert client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers).status_code == 200


def test_other_users_history_is_invisible(client, predict, make_account, patient, modality):
    predict(patient, modality)
    stranger = make_account()
    body = client.get("/api/v1/predictions", headers=stranger.headers).get_json()
    assert body["items"] == [] and body["total"] == 0


# -- S3 (moto server over HTTP) ----------------------------------------------------------------


def test_on_s3_image_redirects_to_a_presigned_url_and_delete_removes_objects(
    client, predict, patient, modality, s3_storage
):
    path = sample_image(modality)
    made = predict(patient, modality, path)
    response = client.get(made["image_url"], headers=patient.headers)
    assert response.status_code == 302
    with urllib.request.urlopen(response.headers["Location"], timeout=10) as fetched:
        assert fetched.read() == path.read_bytes()
        assert fetched.headers["Content-Type"] == "image/jpeg"
    heatmap = client.get(made["heatmap_url"], headers=patient.headers)
    with urllib.request.urlopen(heatmap.headers["Location"], timeout=10) as fetched:
        assert fetched.read().startswith(b"\x89PNG")
    keys = [obj["Key"] for obj in s3_storage._client.list_objects_v2(Bucket=s3_storage.bucket).get("Contents", [])]
    assert len(keys) == 2
    assert client.delete(f"/api/v1/predictions/{made['id']}", headers=patient.headers).status_code == 204
    assert s3_storage._client.list_objects_v2(Bucket=s3_storage.bucket).get("KeyCount") == 0
