"""POST /api/v1/predictions and the modality gate: it picks the model, and refuses what is not ours."""

from __future__ import annotations

import pytest

from cnn_model.modalities import MODALITIES
from tests.resources.helpers import assert_error
from tests.support.images import sample_image
from tests.support.predictions import stored_files
from tests.support.synthetic import foreign_png


def count_rows(client, account) -> int:
    return client.get("/api/v1/predictions", headers=account.headers).get_json()["total"]


@pytest.mark.parametrize("modality", MODALITIES)
def test_without_a_modality_the_gate_picks_it_and_says_so(upload, patient, modality):
    response = upload(patient, None, sample_image(modality))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["modality"] == modality and body["modality_detected"] is True


def test_auto_is_the_same_as_leaving_the_modality_out(upload, patient):
    body = upload(patient, "auto", sample_image("skin_lesion")).get_json()
    assert body["modality"] == "skin_lesion" and body["modality_detected"] is True


def test_a_named_modality_the_gate_agrees_with_is_kept_as_named(upload, patient):
    body = upload(patient, "breast", sample_image("breast")).get_json()
    assert body["modality"] == "breast" and body["modality_detected"] is False


def test_a_chest_xray_named_a_skin_lesion_is_422_and_nothing_is_kept(client, upload, patient, storage_root):
    error = assert_error(upload(patient, "skin_lesion", sample_image("chest_xray")), 422, "modality_mismatch")
    assert error["details"]["declared"] == "skin_lesion" and error["details"]["detected"] == "chest_xray"
    assert "Chest X-ray" in error["message"] and "Skin lesion" in error["message"]
    assert count_rows(client, patient) == 0 and stored_files(storage_root) == []


@pytest.mark.parametrize("kind", ["solid colour", "noise", "gradient", "text page"])
@pytest.mark.parametrize("declared", [None, "skin_lesion"])
def test_pictures_of_nothing_medical_are_422_and_nothing_is_kept(client, upload, patient, storage_root, kind, declared):
    response = upload(patient, declared, data=foreign_png(kind), filename="picture.png")
    error = assert_error(response, 422, "not_a_medical_image")
    assert set(error["details"]["scores"]) == set(MODALITIES)
    assert count_rows(client, patient) == 0 and stored_files(storage_root) == []


@pytest.mark.parametrize("declared", ["skin_lesion", None])
def test_a_picture_named_a_skin_lesion_is_told_medsight_reads_dermatoscope_photos_only(upload, patient, declared):
    response = upload(patient, declared, data=foreign_png("text page"), filename="photo.png")

    error = assert_error(response, 422, "not_a_medical_image")
    assert ("MedSight reads dermatoscope photos only" in error["message"]) == (declared == "skin_lesion")
    assert set(error["details"]["scores"]) == set(MODALITIES)


def test_history_and_detail_say_whether_the_kind_was_detected(client, upload, patient):
    made = upload(patient, None, sample_image("cervical_cytology")).get_json()
    detail = client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers).get_json()
    listed = client.get("/api/v1/predictions", headers=patient.headers).get_json()["items"]
    assert detail["modality_detected"] is True and listed[0]["modality_detected"] is True


def test_an_unknown_modality_is_still_a_validation_error(upload, patient):
    response = upload(patient, "brain_mri", sample_image("breast"))
    assert "modality" in assert_error(response, 422, "validation_error")["details"]
