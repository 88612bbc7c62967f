"""The upload page takes a DICOM chest X-ray, and its result page shows nothing of whom the file was about."""

from __future__ import annotations

import io

from tests.support.dicom import IDENTITY, xray_dicom
from tests.support.images import sample_image
from tests.web.conftest import csrf_of


def test_the_upload_page_takes_a_dicom(patient_browser):
    page = patient_browser.get("/upload")
    assert "application/dicom" in page.get_data(as_text=True)
    body = {
        "csrf_token": csrf_of(page),
        "modality": "chest_xray",
        "file": (io.BytesIO(xray_dicom(sample_image("chest_xray", "pneumonia"), bits=16)), "scan.dcm"),
    }
    response = patient_browser.post("/upload", data=body, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    result = patient_browser.get(response.headers["Location"])
    assert result.status_code == 200
    text = result.get_data(as_text=True)
    assert not [value for value in IDENTITY.values() if value in text]
