"""A capture too poor to read is refused before the model with 422 image_quality, its reason and what to do,
and nothing is kept."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFilter

from cnn_model.quality import REASONS
from cnn_model.training.quality_fit import DEGRADATIONS
from tests.resources.helpers import assert_error
from tests.support.images import sample_image
from tests.support.predictions import stored_files

ADVICE_WORDS = {"blurry": "focus", "too_dark": "light", "too_bright": "flash", "low_contrast": "even light"}


def degraded_jpeg(modality: str, degradation: str) -> bytes:
    _reason, degrade = DEGRADATIONS[degradation]
    with Image.open(sample_image(modality)) as image:
        out = io.BytesIO()
        degrade(image.convert("RGB")).save(out, "JPEG", quality=95)
    return out.getvalue()


@pytest.mark.parametrize("degradation", ["dark", "overexposed", "washed_out", "blurred"])
def test_a_poor_capture_is_422_with_its_reason_and_advice(upload, patient, storage_root, degradation):
    """Refused as a poor capture once the gate knows the kind; where the degradation hides even the kind from the
    gate, the refusal says that, and what to fix, in details.quality."""
    reason = DEGRADATIONS[degradation][0]
    response = upload(patient, "chest_xray", data=degraded_jpeg("chest_xray", degradation), filename="x.jpg")
    error = assert_error(response, 422)
    if error["code"] == "image_quality":
        assert error["details"] == {"reason": reason, "modality": "chest_xray"}
    else:
        assert error["code"] == "not_a_medical_image" and error["details"]["quality"] == reason
    assert reason in REASONS and ADVICE_WORDS[reason] in error["message"]
    assert stored_files(storage_root) == []


# Poor enough to mislead the model, not so poor that the gate no longer sees a skin lesion.
SKIN_CAPTURES = {
    "blurry": lambda image: image.filter(ImageFilter.GaussianBlur(3)),
    "too_dark": lambda image: image.point(lambda v: v * 0.3),
    "too_bright": lambda image: image.point(lambda v: 255 - (255 - v) * 0.3),
}


def skin_capture(reason: str) -> bytes:
    with Image.open(sample_image("skin_lesion")) as image:
        out = io.BytesIO()
        SKIN_CAPTURES[reason](image.convert("RGB")).save(out, "JPEG", quality=95)
    return out.getvalue()


@pytest.mark.parametrize("declared", ["skin_lesion", None])
@pytest.mark.parametrize("reason", SKIN_CAPTURES)
def test_a_poor_photo_the_gate_knows_is_image_quality(upload, patient, storage_root, reason, declared):
    response = upload(patient, declared, data=skin_capture(reason), filename="x.jpg")
    error = assert_error(response, 422, "image_quality")
    assert error["details"] == {"reason": reason, "modality": "skin_lesion"}
    assert stored_files(storage_root) == []


def _breast_thumbnail(side: int) -> bytes:
    with Image.open(sample_image("breast")) as image:
        out = io.BytesIO()
        image.convert("RGB").resize((side, side)).save(out, "PNG")
    return out.getvalue()


def test_a_tiny_image_is_too_small_naming_the_size_needed(upload, patient):
    error = assert_error(upload(patient, "breast", data=_breast_thumbnail(80), filename="x.png"), 422, "image_quality")
    assert error["details"]["reason"] == "too_small" and "pixels on its shorter side" in error["message"]


def test_a_thumbnail_too_small_for_the_gate_is_refused_with_the_size_advice(upload, patient):
    # At 60 px this ultrasound lies nearer the gate's foreign close-ups than its kind allows (gate 1.1.0 on).
    error = assert_error(upload(patient, "breast", data=_breast_thumbnail(60), filename="x.png"), 422)
    assert error["code"] in ("image_quality", "not_a_medical_image")
    assert "pixels on its shorter side" in error["message"]
    if error["code"] == "not_a_medical_image":
        assert error["details"]["quality"] == "too_small"


def test_the_gate_picks_the_limits_when_no_modality_is_named(upload, patient):
    response = upload(patient, None, data=degraded_jpeg("chest_xray", "blurred"), filename="x.jpg")
    error = assert_error(response, 422)
    assert error["code"] in ("image_quality", "not_a_medical_image")
    if error["code"] == "image_quality":
        assert error["details"]["reason"] == "blurry"


def test_the_legacy_endpoint_refuses_a_poor_capture_too(client, patient):
    data = {"file": (io.BytesIO(skin_capture("too_dark")), "x.jpg"), "modality": "skin_lesion"}
    response = client.post("/predict", data=data, headers=patient.headers, content_type="multipart/form-data")
    assert assert_error(response, 422, "image_quality")["details"]["reason"] == "too_dark"


def test_a_good_capture_is_read(upload, patient):
    assert upload(patient, "chest_xray").status_code == 201
