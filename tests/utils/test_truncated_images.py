"""A JPEG whose data stops early is refused, even where it carries its end-of-image marker."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.support.images import sample_image
from utils.errors import InvalidImage
from utils.images import validate_image_upload

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 40_000_000}


def _noisy_jpeg(side: int, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(7)
    small = (rng.random((side // 10, side // 10, 3)) * 255).astype("uint8")
    image = Image.fromarray(small).resize((side, side)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("decode_size", [None, 224])
def test_a_big_jpeg_header_with_4_kb_of_data_and_an_end_marker_is_invalid(mode, decode_size):
    truncated = _noisy_jpeg(2000, mode)[:4096] + b"\xff\xd9"
    with pytest.raises(InvalidImage) as refused:
        validate_image_upload(truncated, decode_size=decode_size, **LIMITS)
    assert refused.value.code == "invalid_image"


def test_a_jpeg_cut_off_without_an_end_marker_is_invalid_too():
    with pytest.raises(InvalidImage):
        validate_image_upload(_noisy_jpeg(800)[:4096], **LIMITS)


@pytest.mark.parametrize("modality", ["skin_lesion", "chest_xray", "breast", "cervical_cytology"])
def test_whole_images_are_still_accepted(modality):
    validated = validate_image_upload(sample_image(modality).read_bytes(), decode_size=224, **LIMITS)
    assert validated.width > 0


def test_a_whole_jpeg_ending_in_dark_or_light_grey_is_accepted():
    for shade in (0, 127, 129, 255):
        buffer = io.BytesIO()
        Image.new("L", (64, 64), shade).save(buffer, "JPEG")
        validate_image_upload(buffer.getvalue(), **LIMITS)


def test_the_api_answers_422_invalid_image(client, patient):
    from tests.resources.helpers import assert_error

    truncated = _noisy_jpeg(2000)[:4096] + b"\xff\xd9"
    response = client.post(
        "/api/v1/predictions",
        data={"modality": "skin_lesion", "file": (io.BytesIO(truncated), "big.jpg")},
        headers=patient.headers,
        content_type="multipart/form-data",
    )
    assert_error(response, 422, "invalid_image")
    assert client.get("/api/v1/predictions", headers=patient.headers).get_json()["total"] == 0
