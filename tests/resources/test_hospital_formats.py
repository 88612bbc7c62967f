"""A prediction for a hospital's systems: DICOM SR (TID 1500), its source image and the heatmap as a Parametric
Map, checked by dciodvfy and dsrdump; a FHIR R4 Bundle parsed back by fhir.resources; both saying the same thing;
the usual reading rules."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import numpy as np
import pytest
from fhir.resources.R4B.bundle import Bundle
from pydicom import dcmread

from cnn_model.modalities import MODALITIES, get_spec
from constants import AuditAction
from db import db
from models import Prediction
from tests.resources.helpers import assert_error
from tests.resources.test_admin import audit
from tests.resources.test_dicom_uploads import XRAYS, assert_nothing_identifying
from tests.resources.test_tokens import create_token
from tests.support.dicom import xray_dicom
from tests.support.dicom_tools import dciodvfy_errors, dsrdump
from tests.support.images import sample_image

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
AIAST = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "AIAST")


def document(client, account, prediction_id, kind, *, admin: bool = False):
    prefix = "/api/v1/admin/predictions" if admin else "/api/v1/predictions"
    return client.get(f"{prefix}/{prediction_id}/{kind}", headers=account.headers)


def predicted(upload, account, modality, **kwargs) -> dict:
    response = upload(account, modality, **kwargs) if kwargs else upload(account, modality, sample_image(modality))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def sr_items(sr) -> dict[str, list]:
    """The SR's measurement group: NUM values and CODE values by concept name meaning."""
    group = sr.ContentSequence[-1].ContentSequence[0]
    found: dict[str, list] = {}
    for item in group.ContentSequence:
        meaning = item.ConceptNameCodeSequence[0].CodeMeaning
        if item.ValueType == "NUM":
            found.setdefault(meaning, []).append(float(item.MeasuredValueSequence[0].NumericValue))
        elif item.ValueType == "CODE":
            code = item.ConceptCodeSequence[0]
            found.setdefault(meaning, []).append((code.get("CodeValue") or code.LongCodeValue, code.CodeMeaning))
        elif item.ValueType == "TEXT":
            found.setdefault(meaning, []).append(item.TextValue)
    return found


@pytest.mark.parametrize("modality", list(MODALITIES))
def test_sr_and_source_image_of_every_modality_pass_dciodvfy_and_dsrdump(client, upload, patient, modality, tmp_path):
    made = predicted(upload, patient, modality)
    sr_response = document(client, patient, made["id"], "dicom-sr")
    assert sr_response.status_code == 200 and sr_response.mimetype == "application/dicom"
    source_response = document(client, patient, made["id"], "dicom-source")
    assert source_response.status_code == 200
    sr, source = dcmread(io.BytesIO(sr_response.data)), dcmread(io.BytesIO(source_response.data))
    assert sr.SOPClassUID == COMPREHENSIVE_3D_SR and source.SOPClassUID == SECONDARY_CAPTURE
    assert sr.StudyInstanceUID == source.StudyInstanceUID and sr.PreliminaryFlag == "PRELIMINARY"
    reference = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert reference.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    for name, data in (("sr.dcm", sr_response.data), ("image.dcm", source_response.data)):
        (tmp_path / name).write_bytes(data)
        assert dciodvfy_errors(tmp_path / name) == [], name
    dump = dsrdump(tmp_path / "sr.dcm")
    label = get_spec(modality).class_spec(made["label"])
    assert '"Finding")=(' in dump and "Imaging Measurement Report" in dump
    assert (label.snomed_ct[0] if label.snomed_ct else f"{modality}.{made['label']}") in dump
    assert f'"Algorithm Version")="{made["model"]["version"]}"' in dump
    # The same objects on every download: a PACS stores them once.
    assert document(client, patient, made["id"], "dicom-sr").data == sr_response.data


def test_sr_of_a_dicom_upload_goes_into_its_study_and_names_its_instance(client, upload, patient, tmp_path):
    made = predicted(upload, patient, "chest_xray", data=xray_dicom(XRAYS[1], bits=12), filename="scan.dcm")
    sr_response = document(client, patient, made["id"], "dicom-sr")
    assert sr_response.status_code == 200, sr_response.get_json()
    sr_bytes = sr_response.data
    original = dcmread(io.BytesIO(document(client, patient, made["id"], "dicom-source").data))
    sr = dcmread(io.BytesIO(sr_bytes))
    assert original.PatientIdentityRemoved == "YES" and original.SOPClassUID != SECONDARY_CAPTURE
    assert sr.StudyInstanceUID == original.StudyInstanceUID and sr.SeriesInstanceUID != original.SeriesInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == original.SeriesInstanceUID
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert_nothing_identifying(sr_bytes)
    assert sr.PatientName == "" and sr.PatientID == "" and sr.PatientBirthDate == ""
    (tmp_path / "sr.dcm").write_bytes(sr_bytes)
    assert dciodvfy_errors(tmp_path / "sr.dcm") == []


@pytest.mark.parametrize("modality", list(MODALITIES))
def test_fhir_bundle_parses_back_and_labels_what_the_model_asserted(client, upload, patient, modality):
    made = predicted(upload, patient, modality)
    response = document(client, patient, made["id"], "fhir")
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    bundle = Bundle.model_validate_json(response.data)
    resources = {entry.resource.get_resource_type(): entry.resource for entry in bundle.entry}
    assert set(resources) == {"DiagnosticReport", "Observation", "Device", "Provenance"}
    for name in ("DiagnosticReport", "Observation"):
        assert [(c.system, c.code) for c in resources[name].meta.security] == [AIAST]
        assert resources[name].status == "preliminary"
        assert resources[name].subject.identifier.value == patient.id and resources[name].subject.reference is None
    assert resources["Device"].version[0].value == made["model"]["version"]
    assert resources["Device"].url.endswith("/api/v1/models")
    assert resources["Provenance"].agent[0].who.reference == next(
        e.fullUrl for e in bundle.entry if e.resource.get_resource_type() == "Device"
    )
    text = response.get_data(as_text=True)
    assert patient.email not in text and "Pat Ient" not in text


def test_sr_and_fhir_bundle_of_one_prediction_say_the_same_thing(client, upload, patient):
    made = predicted(upload, patient, "skin_lesion", path=sample_image("skin_lesion", "mel"))
    sr = sr_items(dcmread(io.BytesIO(document(client, patient, made["id"], "dicom-sr").data)))
    bundle = document(client, patient, made["id"], "fhir").get_json()
    resources = {entry["resource"]["resourceType"]: entry["resource"] for entry in bundle["entry"]}
    observation = resources["Observation"]
    finding = observation["valueCodeableConcept"]["coding"][0]
    assert sr["Finding"] == [(finding["code"], finding["display"])]
    fhir_probabilities = {
        c["code"]["coding"][0]["display"]: c["valueQuantity"]["value"]
        for c in observation["component"]
        if c["code"]["coding"][0]["display"].startswith("Probability of ")
    }
    sr_probabilities = {name: values[0] for name, values in sr.items() if name.startswith("Probability of ")}
    assert sr_probabilities == fhir_probabilities and len(sr_probabilities) == len(made["probabilities"])
    assert sorted(fhir_probabilities.values()) == sorted(round(p, 6) for p in made["probabilities"].values())
    assert sr["Algorithm Version"] == [resources["Device"]["version"][0]["value"]] == [made["model"]["version"]]
    flagged = made["is_malignant"]
    assert sr["Flagged as malignant"] == [("373066001", "Yes") if flagged else ("373067005", "No")]
    assert observation["interpretation"][0]["coding"][0]["code"] == ("POS" if flagged else "NEG")
    members = [
        c["valueCodeableConcept"]["coding"][0]["code"] for c in observation["component"] if "valueCodeableConcept" in c
    ]
    assert [code for code, _ in sr["Finding not ruled out (prediction set)"]] == members


def test_other_users_prediction_is_404_and_an_admins_read_is_audited(client, upload, patient, admin, make_account):
    made = predicted(upload, patient, "chest_xray")
    stranger = make_account(full_name="Stran Ger")
    for kind in ("dicom-sr", "dicom-source", "dicom-heatmap", "fhir"):
        assert document(client, stranger, made["id"], kind).status_code == 404
        assert document(client, admin, made["id"], kind, admin=True).status_code == 200
    assert document(client, patient, made["id"], "dicom-sr", admin=True).status_code == 403
    events = audit(client, admin, action=AuditAction.PREDICTION_READ, target_id=made["id"])
    assert {event["details"]["what"] for event in events} == {"dicom-sr", "dicom-source", "dicom-heatmap", "fhir"}


def test_a_read_only_token_downloads_the_sr_and_the_map(client, upload, patient):
    made = predicted(upload, patient, "breast")
    token = create_token(client, patient, scopes=["read"])["token"]
    for kind in ("dicom-sr", "dicom-heatmap"):
        response = client.get(f"/api/v1/predictions/{made['id']}/{kind}", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200 and response.mimetype == "application/dicom", kind


def test_the_account_export_holds_each_predictions_fhir_bundle(client, upload, patient):
    made = [predicted(upload, patient, modality) for modality in ("skin_lesion", "chest_xray")]
    export = client.get("/api/v1/me/export", headers=patient.headers)
    assert export.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(export.data))
    entries = {entry["id"]: entry for entry in json.loads(archive.read("account.json"))["predictions"]}
    for prediction in made:
        name = entries[prediction["id"]]["files"]["fhir"]
        bundle = Bundle.model_validate_json(archive.read(name))
        report = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "DiagnosticReport")
        assert report.identifier[0].value == prediction["id"]


def attention_values(pmap) -> np.ndarray:
    """The map's pixels as its real-world value mapping reads them."""
    mapping = pmap.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    rwv = pmap.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert float(mapping.RescaleSlope) == 1 and float(mapping.RescaleIntercept) == 0
    return pmap.pixel_array.astype(np.float64) * float(rwv.RealWorldValueSlope) + float(rwv.RealWorldValueIntercept)


def assert_map_of(pmap, source, sr, tmp_path) -> None:
    assert pmap.SOPClassUID == PARAMETRIC_MAP
    assert pmap.StudyInstanceUID == sr.StudyInstanceUID == source.StudyInstanceUID
    assert pmap.SeriesInstanceUID not in (sr.SeriesInstanceUID, source.SeriesInstanceUID)
    assert (pmap.Rows, pmap.Columns) == (source.Rows, source.Columns)
    assert pmap.FrameOfReferenceUID == source.get("FrameOfReferenceUID", pmap.FrameOfReferenceUID)
    derived = pmap.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert derived.ReferencedSOPInstanceUID == source.SOPInstanceUID
    rwv = pmap.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    quantity = rwv.QuantityDefinitionSequence[0].ConceptCodeSequence[0]
    assert (quantity.CodingSchemeDesignator, quantity.CodeValue) == ("99MEDSIGHT", "attention")
    values = attention_values(pmap)
    assert values.min() >= 0 and values.max() <= 1 and values.max() > 0.9  # the map's peak is 1
    (tmp_path / "map.dcm").write_bytes(encoded := pmap_bytes(pmap))
    assert dciodvfy_errors(tmp_path / "map.dcm") == []
    assert_nothing_identifying(encoded)


def pmap_bytes(pmap) -> bytes:
    out = io.BytesIO()
    pmap.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("modality", list(MODALITIES))
def test_heatmap_of_every_modality_is_a_parametric_map_in_the_srs_study_passing_dciodvfy(
    client, upload, patient, modality, tmp_path
):
    made = predicted(upload, patient, modality)
    response = document(client, patient, made["id"], "dicom-heatmap")
    assert response.status_code == 200 and response.mimetype == "application/dicom", response.data[:200]
    pmap = dcmread(io.BytesIO(response.data))
    sr = dcmread(io.BytesIO(document(client, patient, made["id"], "dicom-sr").data))
    source = dcmread(io.BytesIO(document(client, patient, made["id"], "dicom-source").data))
    assert_map_of(pmap, source, sr, tmp_path)
    (tmp_path / "served.dcm").write_bytes(response.data)
    assert dciodvfy_errors(tmp_path / "served.dcm") == []
    # The same object on every download, and after the heatmap PNG is drawn (the map is kept with the row).
    assert client.get(f"/api/v1/predictions/{made['id']}/heatmap", headers=patient.headers).status_code == 200
    assert document(client, patient, made["id"], "dicom-heatmap").data == response.data


def test_heatmap_of_a_dicom_upload_lies_on_its_pixel_grid(client, upload, patient, tmp_path):
    made = predicted(upload, patient, "chest_xray", data=xray_dicom(XRAYS[1], bits=12), filename="scan.dcm")
    response = document(client, patient, made["id"], "dicom-heatmap")
    assert response.status_code == 200, response.get_json()
    original = dcmread(io.BytesIO(document(client, patient, made["id"], "dicom-source").data))
    sr = dcmread(io.BytesIO(document(client, patient, made["id"], "dicom-sr").data))
    assert original.SOPClassUID != SECONDARY_CAPTURE
    assert_map_of(dcmread(io.BytesIO(response.data)), original, sr, tmp_path)
    (tmp_path / "served.dcm").write_bytes(response.data)
    assert dciodvfy_errors(tmp_path / "served.dcm") == []


def test_heatmap_whose_data_is_no_longer_kept_is_404(client, upload, patient, app):
    made = predicted(upload, patient, "skin_lesion")
    with app.app_context():
        db.session.get(Prediction, uuid.UUID(made["id"])).activation_map = None
        db.session.commit()
    error = assert_error(document(client, patient, made["id"], "dicom-heatmap"), 404, "not_found")
    assert "no longer kept" in error["message"]
