"""What becomes of an uploaded photo: kept, served and exported without its metadata; too many pixels refused."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from tests.resources.helpers import assert_error
from tests.support.images import IDENTIFYING_MARKERS, identifying_photo, sample_image, without_metadata_or_gps
from tests.support.predictions import stored_files


def _photo(modality: str) -> Image.Image:
    with Image.open(sample_image(modality)) as photo:
        return photo.convert("RGB")


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_stored_served_and_exported_photos_carry_no_metadata_or_gps(
    client, upload, patient, modality, storage_root, image_format
):
    response = upload(patient, modality, data=identifying_photo(_photo(modality), image_format), filename="p")
    assert response.status_code == 201, response.get_json()
    made = response.get_json()
    served = client.get(made["image_url"], headers=patient.headers)
    assert served.status_code == 200 and served.mimetype == made["image"]["content_type"]
    export = client.get("/api/v1/me/export", headers=patient.headers)
    archive = zipfile.ZipFile(io.BytesIO(export.data))
    exported = [archive.read(name) for name in archive.namelist() if name.startswith("photos/")]
    stored = [path.read_bytes() for path in stored_files(storage_root)]
    assert exported == [served.data] and served.data in stored  # one photo: the same bytes everywhere
    assert without_metadata_or_gps(served.data)
    everything = [served.data, export.data, *stored]
    assert not [marker for marker in IDENTIFYING_MARKERS if any(marker in data for data in everything)]


def test_metadata_changes_neither_the_prediction_nor_the_kept_photo(upload, patient, modality):
    plain, identifying = io.BytesIO(), identifying_photo(_photo(modality), "JPEG")
    _photo(modality).save(plain, format="JPEG", quality=92)  # the same pixels, the same encoder, no metadata
    uploads = (plain.getvalue(), identifying)
    answers = [upload(patient, modality, data=data, filename="p").get_json() for data in uploads]
    assert answers[0]["probabilities"] == answers[1]["probabilities"]
    assert answers[0]["image"] == answers[1]["image"]  # the stored photos are the same bytes


def test_an_image_decoded_whole_past_max_full_decode_pixels_is_422_with_the_limit(app, upload, patient, modality):
    buffer = io.BytesIO()
    Image.new("L", (4100, 4100)).save(buffer, format="PNG")  # 16.8 million pixels in 17 KB
    error = assert_error(upload(patient, modality, data=buffer.getvalue(), filename="p.png"), 422, "image_too_large")
    assert error["details"] == {"width": 4100, "height": 4100, "max_pixels": app.config["MAX_FULL_DECODE_PIXELS"]}
    assert app.config["MAX_FULL_DECODE_PIXELS"] == 4096 * 4096
