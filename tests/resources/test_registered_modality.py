"""A modality added to the registry is served end to end without editing the app, its schemas or its migrations."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from cnn_model.modalities import MODALITIES, SPECS
from cnn_model.runtime import ARTIFACTS_DIR, ModelRegistry
from cnn_model.specs import ClassSpec
from tests.support.images import sample_image

FIFTH = "fifth_modality"
# A stand-in: the shipped breast network under another modality's name and class names (same class count).
DONOR = "breast"


@pytest.fixture
def fifth_modality(tmp_path):
    """A fifth modality in the registry, and a models folder with the shipped four plus an exported model for it."""
    donor = SPECS[DONOR]
    spec = replace(
        donor,
        name=FIFTH,
        display_name="Fifth modality (a test double)",
        classes=tuple(
            ClassSpec(f"kind_{i}", f"Kind {i}", f"The {i}th kind of finding.", c.is_positive)
            for i, c in enumerate(donor.classes)
        ),
    )
    models = tmp_path / "models"
    for name in MODALITIES:
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).symlink_to(ARTIFACTS_DIR / name, target_is_directory=True)
    folder = models / FIFTH
    folder.mkdir()
    shutil.copy(ARTIFACTS_DIR / DONOR / "model.tflite", folder / "model.tflite")
    card = json.loads((ARTIFACTS_DIR / DONOR / "card.json").read_text())
    card.update(
        name="medsight-fifth-modality-test",
        modality=FIFTH,
        display_name=spec.display_name,
        classes=[
            {"name": c.name, "display_name": c.display_name, "description": c.description, "is_positive": c.is_positive}
            for c in spec.classes
        ],
    )
    card.pop("decision", None)
    card.pop("conformal", None)  # the donor's sets are thresholds for the donor's classes
    (folder / "card.json").write_text(json.dumps(card))
    with SPECS.registered(spec):
        yield spec, models


def test_a_registered_modality_is_classified_kept_and_listed(app, client, patient, upload, fifth_modality, monkeypatch):
    spec, models = fifth_modality
    monkeypatch.setitem(app.extensions, "models", ModelRegistry(models))  # the app's one seam for its models

    response = upload(patient, FIFTH, sample_image(DONOR))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["modality"] == FIFTH and body["label"] in spec.class_names
    assert body["display_name"] == spec.class_spec(body["label"]).display_name
    assert set(body["class_descriptions"]) == set(spec.class_names)
    assert body[spec.positive_flag] == body["is_positive"]

    history = client.get(f"/api/v1/predictions?modality={FIFTH}", headers=patient.headers).get_json()
    assert [item["id"] for item in history["items"]] == [body["id"]]
    models_listed = client.get("/api/v1/models").get_json()
    assert FIFTH in [card["modality"] for card in models_listed["items"]]
    assert models_listed["missing_modalities"] == []
    assert client.get("/ready").get_json()["checks"]["models"]["ok"] is True


def test_the_api_document_of_an_app_made_after_registering_lists_it(build_app, fifth_modality):
    _spec, models = fifth_modality
    document = build_app(MODEL_DIR=str(models)).test_client().get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    upload_schema = document["paths"]["/api/v1/predictions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    upload_fields = schemas[upload_schema["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert upload_fields["modality"]["enum"] == [*MODALITIES, "auto"] and FIFTH in MODALITIES
    list_parameters = document["paths"]["/api/v1/predictions"]["get"]["parameters"]
    assert FIFTH in next(p for p in list_parameters if p["name"] == "modality")["schema"]["enum"]
    assert FIFTH in schemas["ModelCard"]["properties"]["modality"]["enum"]
    assert "Fifth modality (a test double)" in document["info"]["description"]
