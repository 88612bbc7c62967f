"""Prediction sets in the contract: prediction_set, set_coverage and certainty in the API, POST /predict and history."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import update

from cnn_model.conformal import CLEAR, UNCERTAIN
from cnn_model.modalities import MODALITIES, get_spec
from cnn_model.runtime import ARTIFACTS_DIR
from db import db
from models import Prediction
from tests.resources.helpers import assert_error
from tests.support.images import sample_image

CERTAINTY_FIELDS = ("prediction_set", "set_coverage", "certainty")


def card_sets(modality: str) -> dict:
    return json.loads((ARTIFACTS_DIR / modality / "card.json").read_text())["conformal"]


def assert_a_set_from_the_card(body: dict) -> None:
    """The set the card's thresholds give for the shown probabilities, most probable first."""
    spec, sets = get_spec(body["modality"]), card_sets(body["modality"])
    probabilities = body["probabilities"]
    members = [name for name in spec.class_names if 1 - probabilities[name] <= sets["thresholds"][name] + 1e-9]
    expected = sorted(members, key=lambda name: -probabilities[name])
    if not expected:  # no class typical enough: the two most probable
        expected = sorted(spec.class_names, key=lambda name: -probabilities[name])[:2]
    assert body["prediction_set"] == expected
    assert body["set_coverage"] == sets["coverage"] == 0.9
    assert body["certainty"] == (CLEAR if len(expected) == 1 else UNCERTAIN)


@pytest.mark.parametrize("modality_name", MODALITIES)
def test_an_upload_answers_its_prediction_set_and_certainty(client, predict, patient, modality_name):
    spec = get_spec(modality_name)
    body = predict(patient, modality_name, sample_image(modality_name, spec.positive_classes[0]))
    assert_a_set_from_the_card(body)
    assert body["label"] == body["prediction_set"][0] or body["certainty"] == UNCERTAIN
    again = client.get(f"/api/v1/predictions/{body['id']}", headers=patient.headers).get_json()
    assert {name: again[name] for name in CERTAINTY_FIELDS} == {name: body[name] for name in CERTAINTY_FIELDS}
    # Every field there was before is still there, unchanged.
    for name in ("label", "confidence", "probabilities", "is_positive", "positive_probability", spec.positive_flag):
        assert again[name] == body[name]


def test_history_filters_by_certainty_and_older_rows_show_no_set(app, client, predict, patient, modality):
    made = [predict(patient, modality) for _ in range(2)]
    older = predict(patient, modality)
    with app.app_context():  # a row from before prediction sets
        db.session.execute(
            update(Prediction)
            .where(Prediction.id == uuid.UUID(older["id"]))
            .values(prediction_set=None, set_coverage=None, certainty=None)
        )
        db.session.commit()

    def ids(**query):
        response = client.get("/api/v1/predictions", query_string=query, headers=patient.headers)
        assert response.status_code == 200, response.get_json()
        return {item["id"]: item for item in response.get_json()["items"]}

    every = ids()
    assert {name: every[older["id"]][name] for name in CERTAINTY_FIELDS} == dict.fromkeys(CERTAINTY_FIELDS)
    assert every[older["id"]]["label"] == older["label"]
    clear = {p["id"] for p in made if p["certainty"] == CLEAR}
    assert set(ids(certainty=CLEAR)) == clear
    assert set(ids(certainty=UNCERTAIN)) == {p["id"] for p in made} - clear
    assert_error(client.get("/api/v1/predictions?certainty=sure", headers=patient.headers), 422, "validation_error")


def test_post_predict_full_shape_carries_the_set_stored_and_anonymous(client, patient, build_app, modality):
    path = sample_image(modality)
    response = client.post("/predict", data={"file": (path.open("rb"), path.name)}, headers=patient.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    stored = client.get(f"/api/v1/predictions/{body['id']}", headers=patient.headers).get_json()
    assert {name: body[name] for name in CERTAINTY_FIELDS} == {name: stored[name] for name in CERTAINTY_FIELDS}
    assert_a_set_from_the_card(stored)
    assert set(body["prediction"]) == {"class_name", "is_cancerous", "confidence", "all_predictions"}

    anonymous = build_app(ANONYMOUS_PREDICT="true").test_client()
    body = anonymous.post("/predict", data={"file": (path.open("rb"), path.name)}).get_json()
    assert body["stored"] is False and body["certainty"] in (CLEAR, UNCERTAIN)
    assert body["set_coverage"] == 0.9 and body["prediction_set"] == stored["prediction_set"]


def test_the_openapi_document_describes_the_certainty_fields_and_filter(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    prediction = next(s for name, s in schemas.items() if name in ("Prediction", "PredictionSchema"))
    assert set(CERTAINTY_FIELDS) <= set(prediction["properties"])
    parameters = spec["paths"]["/api/v1/predictions"]["get"]["parameters"]
    certainty = next(p for p in parameters if p["name"] == "certainty")
    assert certainty["schema"]["enum"] == [CLEAR, UNCERTAIN]
