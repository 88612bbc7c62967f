"""DICOM chest X-rays through the API and the upload page: read like the JPEG they were made from, kept without
who they are about (the photo is a PNG preview, the file is kept de-identified), refused clearly when not an image."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread

from tests.resources.helpers import assert_error
from tests.support.dicom import IDENTITY, PRIVATE_TEXT, report_dicom, xray_dicom
from tests.support.images import sample_images
from tests.support.predictions import stored_files

XRAYS = sample_images("chest_xray", "normal")[:1] + sample_images("chest_xray", "pneumonia")[:2]
ENCODINGS = [
    {"bits": 8},
    {"bits": 12, "photometric": "MONOCHROME1"},
    {"bits": 16, "signed": True},
    {"bits": 16, "photometric": "MONOCHROME1"},
]
IDENTIFYING = [value.encode() for value in IDENTITY.values()] + [PRIVATE_TEXT.encode()]


def assert_nothing_identifying(data: bytes) -> None:
    found = [value for value in IDENTIFYING if value in data]
    assert not found, found


@pytest.mark.parametrize("xray", XRAYS, ids=lambda p: p.stem)
def test_a_dicom_gets_the_label_of_the_jpeg_it_was_made_from(upload, patient, xray):
    jpeg = upload(patient, "chest_xray", xray)
    assert jpeg.status_code == 201, jpeg.get_json()
    for encoding in ENCODINGS:
        response = upload(patient, "chest_xray", data=xray_dicom(xray, **encoding), filename="scan.dcm")
        assert response.status_code == 201, (encoding, response.get_json())
        body = response.get_json()
        assert body["label"] == jpeg.get_json()["label"], encoding
        assert body["probabilities"] == pytest.approx(jpeg.get_json()["probabilities"], abs=1e-3)


def test_the_gate_recognises_a_dicom_chest_xray(upload, patient):
    response = upload(patient, None, data=xray_dicom(XRAYS[0]), filename="scan.dcm")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["modality"] == "chest_xray" and response.get_json()["modality_detected"] is True


def test_nothing_identifying_is_stored_answered_or_logged(client, upload, patient, storage_root, capsys):
    capsys.readouterr()
    response = upload(patient, "chest_xray", data=xray_dicom(XRAYS[1], bits=12), filename="Doe_Jane_MRN.dcm")
    assert response.status_code == 201, response.get_json()
    assert_nothing_identifying(response.get_data())
    prediction_id = response.get_json()["id"]
    image = client.get(f"/api/v1/predictions/{prediction_id}/image", headers=patient.headers)
    assert image.status_code == 200 and image.mimetype == "image/png"
    heatmap = client.get(f"/api/v1/predictions/{prediction_id}/heatmap", headers=patient.headers)
    assert heatmap.status_code == 200 and heatmap.mimetype == "image/png"
    files = stored_files(storage_root)
    originals = [path for path in files if path.relative_to(storage_root).parts[0] == "originals"]
    assert len(originals) == 1
    kept = dcmread(io.BytesIO(originals[0].read_bytes()))
    assert kept.PatientIdentityRemoved == "YES" and kept.Rows == 224
    for path in files:
        assert_nothing_identifying(path.read_bytes())
    assert_nothing_identifying(capsys.readouterr().err.encode())
    assert "Doe_Jane" not in capsys.readouterr().err


def test_deleting_a_dicom_prediction_removes_the_kept_file_too(client, upload, patient, storage_root):
    response = upload(patient, "chest_xray", data=xray_dicom(XRAYS[0]), filename="scan.dcm")
    prediction_id = response.get_json()["id"]
    client.get(f"/api/v1/predictions/{prediction_id}/heatmap", headers=patient.headers)
    objects = [path for path in stored_files(storage_root) if ".content-types" not in path.parts]
    assert sorted(path.relative_to(storage_root).parts[0] for path in objects) == ["heatmaps", "originals", "photos"]
    assert client.delete(f"/api/v1/predictions/{prediction_id}", headers=patient.headers).status_code == 204
    assert stored_files(storage_root) == []


def test_a_dicom_that_is_no_image_is_422_and_nothing_is_kept(upload, patient, storage_root):
    error = assert_error(
        upload(patient, "chest_xray", data=report_dicom(), filename="report.dcm"), 422, "invalid_image"
    )
    assert "no image" in error["message"]
    assert stored_files(storage_root) == []


ULTRASOUND_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"


def ultrasound_dicom(path, frames: int = 3, colour: bool = False) -> bytes:
    """A multi-frame ultrasound DICOM of the breast image at path (its first frame the image, the others black)."""
    import numpy as np
    from PIL import Image

    from tests.support.dicom import encoded, file_dataset

    picture = Image.open(path).convert("RGB" if colour else "L")
    pixels = np.asarray(picture, dtype=np.uint8)
    ds = file_dataset(ULTRASOUND_MULTIFRAME_STORAGE)
    ds.Modality = "US"
    stack = np.stack([pixels] + [np.zeros_like(pixels)] * (frames - 1))
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = frames
    ds.PixelData = stack.tobytes()
    return encoded(ds)


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
def test_a_multi_frame_breast_ultrasound_dicom_is_read_by_its_first_frame(upload, patient, storage_root, colour):
    breast = sample_images("breast", "malignant")[0]
    jpeg = upload(patient, "breast", breast).get_json()
    response = upload(patient, "breast", data=ultrasound_dicom(breast, colour=colour), filename="us.dcm")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["label"] == jpeg["label"]
    assert body["probabilities"] == pytest.approx(jpeg["probabilities"], abs=0.02)
    originals = [p for p in stored_files(storage_root) if p.relative_to(storage_root).parts[0] == "originals"]
    kept = dcmread(io.BytesIO(originals[0].read_bytes()))
    assert kept.Modality == "US" and "NumberOfFrames" not in kept and kept.PatientIdentityRemoved == "YES"
    assert_nothing_identifying(originals[0].read_bytes())
