"""Jobs from a real PACS (Debian's Orthanc with its DICOMweb plugin, tests/support/orthanc.py): a study taken by
StudyInstanceUID, scored as an upload would be, and each result's SR found back in the same study by QIDO."""

from __future__ import annotations

import io

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.uid import generate_uid
from sqlalchemy import select

from cnn_model.modalities import get_spec
from db import db
from managers.pacs import PacsReports
from models import JobItem
from services import dicomweb
from tests.resources.helpers import assert_error
from tests.resources.test_dicom_uploads import XRAYS, assert_nothing_identifying
from tests.resources.test_hospital_formats import COMPREHENSIVE_3D_SR, sr_items
from tests.support.dicom import xray_dicom
from tests.support.dicom_tools import dciodvfy_errors
from utils.dicom import read_dicom
from utils.errors import PacsUnavailable

CHEST = XRAYS[:2]  # one normal, one pneumonia


@pytest.fixture
def pacs(app, orthanc, monkeypatch):
    """The app pointed at the test PACS (its settings are read on each call)."""
    for key, value in orthanc.settings.items():
        monkeypatch.setitem(app.config, key, value)
    return orthanc


def pacs_client(orthanc) -> DICOMwebClient:
    session = requests.Session()
    session.auth = orthanc.auth
    return DICOMwebClient(url=orthanc.dicomweb_url, session=session)


def store_study(orthanc) -> tuple[str, list[str]]:
    """A de-identified chest X-ray study in the PACS: the two X-rays as CR in one series, and a picture of another
    kind (OT) beside them. Its StudyInstanceUID and the radiographs' SOP Instance UIDs."""
    study, series = generate_uid(), generate_uid()
    datasets = []
    for path in CHEST:
        dataset = dcmread(io.BytesIO(read_dicom(xray_dicom(path), max_pixels=10**8).deidentified))
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        datasets.append(dataset)
    other = dcmread(io.BytesIO(read_dicom(xray_dicom(CHEST[0]), max_pixels=10**8).deidentified))
    other.StudyInstanceUID, other.SeriesInstanceUID, other.Modality = study, generate_uid(), "OT"
    pacs_client(orthanc).store_instances([*datasets, other])
    return study, [dataset.SOPInstanceUID for dataset in datasets]


def jpeg_labels(upload, patient) -> list[str]:
    labels = []
    for path in CHEST:
        response = upload(patient, "chest_xray", path)
        assert response.status_code == 201, response.get_json()
        labels.append(response.get_json()["label"])
    return labels


def items_of(client, patient, job) -> list[dict]:
    return client.get(job["links"]["items"], headers=patient.headers).get_json()["items"]


def test_a_study_from_the_pacs_is_scored_and_its_srs_land_in_the_same_study(
    client, upload, patient, pacs, record_backend, tmp_path
):
    study, instances = store_study(pacs)
    response = client.post("/api/v1/jobs", json={"study_instance_uid": study}, headers=patient.headers)
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert (job["source"], job["modality"], job["status"]) == ("pacs", "chest_xray", "done")
    assert (job["total"], job["scored"], job["failed"]) == (2, 2, 0)  # the OT picture is not a radiograph

    items = items_of(client, patient, job)
    assert [item["name"] for item in items] == [f"{study}/1", f"{study}/2"]
    for item in items:
        assert item["pacs"]["study_instance_uid"] == study
        assert (item["pacs"]["report_status"], item["pacs"]["report_attempts"]) == ("sent", 1)
        assert item["pacs"]["report_error"] is None and item["pacs"]["report_sent_at"]

    # QIDO: the SRs are in the study, one about each original instance, saying what the JPEG path says.
    found = pacs_client(pacs).search_for_instances(study_instance_uid=study, search_filters={"Modality": "SR"})
    assert len(found) == 2
    by_source = {}
    for attributes in found:
        sr = pacs_client(pacs).retrieve_instance(
            study, attributes["0020000E"]["Value"][0], attributes["00080018"]["Value"][0]
        )
        assert sr.SOPClassUID == COMPREHENSIVE_3D_SR and sr.StudyInstanceUID == study
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        by_source[evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID] = sr
    assert set(by_source) == set(instances)
    spec = get_spec("chest_xray")
    for instance, label in zip(instances, jpeg_labels(upload, patient), strict=True):
        sr = by_source[instance]
        expected = spec.class_spec(label)
        assert sr_items(sr)["Finding"] == [(expected.snomed_ct[0], expected.snomed_ct[1])]
        sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
        assert_nothing_identifying((tmp_path / "sr.dcm").read_bytes())
        assert sr.PatientName == "" and sr.PatientID == ""
        assert dciodvfy_errors(tmp_path / "sr.dcm") == []

    # What MedSight keeps is the de-identified copy, with UIDs of its own; the PACS's are with the job item only.
    source = client.get(f"/api/v1/predictions/{items[0]['prediction_id']}/dicom-source", headers=patient.headers)
    kept = dcmread(io.BytesIO(source.data))
    assert kept.StudyInstanceUID != study and kept.SOPInstanceUID not in instances


def test_a_report_the_pacs_refused_is_sent_again_until_it_is_taken(client, patient, pacs, app, monkeypatch):
    study, _instances = store_study(pacs)
    real_store = dicomweb.store

    def refuse(datasets, study_uid):
        raise PacsUnavailable(details={"action": "store"})

    monkeypatch.setattr(dicomweb, "store", refuse)
    job = client.post("/api/v1/jobs", data={"study_instance_uid": study}, headers=patient.headers).get_json()
    assert job["status"] == "done" and job["scored"] == 2
    pacs_states = [item["pacs"] for item in items_of(client, patient, job)]
    assert {(s["report_status"], s["report_attempts"], s["report_error"]) for s in pacs_states} == {
        ("failed", 1, "pacs_unavailable")
    }
    runner = app.test_cli_runner()
    assert "2 still waiting" in runner.invoke(args=["jobs", "deliver"]).output
    monkeypatch.setattr(dicomweb, "store", real_store)
    assert "0 still waiting" in runner.invoke(args=["jobs", "deliver"]).output
    pacs_states = [item["pacs"] for item in items_of(client, patient, job)]
    assert {(s["report_status"], s["report_attempts"], s["report_error"]) for s in pacs_states} == {("sent", 3, None)}
    assert len(pacs_client(pacs).search_for_instances(study_instance_uid=study, search_filters={"Modality": "SR"})) == 2
    with app.app_context():
        assert PacsReports.waiting_jobs() == []


def test_an_unknown_study_a_bad_uid_and_no_pacs_are_refused(client, patient, pacs, app, monkeypatch):
    unknown = generate_uid()
    response = client.post("/api/v1/jobs", json={"study_instance_uid": [unknown]}, headers=patient.headers)
    assert assert_error(response, 422, "study_not_found")["details"] == {"study_instance_uid": unknown}
    response = client.post("/api/v1/jobs", json={"study_instance_uid": "Doe^Jane"}, headers=patient.headers)
    assert_error(response, 422)
    monkeypatch.setitem(app.config, "DICOMWEB_URL", None)
    response = client.post("/api/v1/jobs", json={"study_instance_uid": unknown}, headers=patient.headers)
    assert_error(response, 409, "pacs_not_configured")
    with app.app_context():
        assert db.session.scalars(select(JobItem)).all() == []
