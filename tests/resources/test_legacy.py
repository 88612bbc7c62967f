"""POST /predict and GET /health as the original single-model apps' clients use them."""

from __future__ import annotations

import pytest

from cnn_model.modalities import MODALITIES, get_spec
from tests.resources.helpers import assert_error, bearer
from tests.support.images import sample_image
from tests.support.predictions import stored_files
from tests.support.synthetic import foreign_png


def post_file(client, path, *, field="file", headers=None, url="/predict"):
    return client.post(url, data={field: (path.open("rb"), path.name)}, headers=headers or {})


@pytest.mark.parametrize("modality", MODALITIES)
def test_a_file_alone_is_read_by_the_model_the_gate_picks_in_the_skin_apps_shape(client, patient, modality):
    spec = get_spec(modality)
    response = post_file(client, sample_image(modality), headers=patient.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True and body["modality"] == modality and body["modality_detected"] is True
    finding = body["prediction"]
    assert set(finding) == {"class_name", "is_cancerous", "confidence", "all_predictions"}
    display_names = {c.display_name for c in spec.classes}
    assert finding["class_name"] in display_names and set(finding["all_predictions"]) == display_names
    assert finding["confidence"] == max(finding["all_predictions"].values())
    assert body["classification"] == finding["class_name"]
    assert body["description"].startswith(f"The model reads this image as {finding['class_name']} with ")
    assert body["description"].endswith(".") and "confidence" in body["description"]
    assert "100%" not in body["description"]
    assert body["stored"] is True and "not a diagnosis" in body["disclaimer"]


def test_the_image_field_name_and_a_personal_token_work_as_before(client, patient, modality):
    token = client.post("/api/v1/tokens", json={"name": "old client"}, headers=patient.headers).get_json()["token"]
    response = post_file(client, sample_image(modality), field="image", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    history = client.get("/api/v1/predictions", headers=patient.headers).get_json()
    assert [item["id"] for item in history["items"]] == [response.get_json()["id"]]


def test_a_named_modality_in_the_query_is_still_checked_by_the_gate(client, patient):
    response = post_file(
        client, sample_image("chest_xray"), url="/predict?modality=skin_lesion", headers=patient.headers
    )
    assert assert_error(response, 422, "modality_mismatch")["details"]["detected"] == "chest_xray"


def test_a_picture_of_something_else_is_refused_not_called_a_mole(client, patient, tmp_path, app, storage_root):
    path = tmp_path / "holiday.png"
    path.write_bytes(foreign_png("text page"))
    assert_error(post_file(client, path, headers=patient.headers), 422, "not_a_medical_image")
    assert stored_files(storage_root) == []


def test_label_shape_answers_the_pneumonia_apps_finding_alone(app, client, patient, monkeypatch):
    monkeypatch.setitem(app.config, "SEED_PREDICT_SHAPE", "label")
    response = post_file(client, sample_image("chest_xray", "pneumonia"), headers=patient.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"prediction"}
    assert body["prediction"] in {c.display_name for c in get_spec("chest_xray").classes}


def test_a_token_is_required_unless_anonymous_use_is_switched_on(client, modality):
    assert_error(post_file(client, sample_image(modality)), 401)


def test_anonymous_use_classifies_without_keeping_anything(build_app, modality):
    app = build_app(ANONYMOUS_PREDICT="true")
    client = app.test_client()
    response = post_file(client, sample_image(modality))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["stored"] is False and body["id"] is None and body["modality"] == modality
    assert "not a diagnosis" in body["disclaimer"]
    assert stored_files(app.config["STORAGE_LOCAL_ROOT"]) == []


def test_anonymous_use_is_rate_limited_per_client_address_in_our_error_shape(build_app, modality, make_account):
    app = build_app(ANONYMOUS_PREDICT="true", ANONYMOUS_PREDICT_RATE="2 per minute")
    client = app.test_client()
    for _ in range(2):
        answered = post_file(client, sample_image(modality))
        assert answered.status_code == 200 and "Retry-After" not in answered.headers
    refused = post_file(client, sample_image(modality))
    error = assert_error(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) > 0 and "2 per 1 minute" in error["details"]["limit"]
    other_address = client.post(
        "/predict",
        data={"file": (sample_image(modality).open("rb"), "x.jpg")},
        environ_overrides={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert other_address.status_code == 200


def test_health_answers_the_skin_apps_keys(client):
    body = client.get("/health").get_json()
    assert body["status"] == "healthy" and body["model_loaded"] is True
