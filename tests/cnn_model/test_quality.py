"""Capture quality (cnn_model.quality): good images pass, severely degraded ones are refused for the right reason,
and each modality's limits, fitted on its training images, refuse few clean ones."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from cnn_model.modalities import MODALITIES
from cnn_model.quality import QUALITY_FILE, QualityLimits, measure, read_limits
from cnn_model.runtime import ARTIFACTS_DIR
from cnn_model.training.quality_fit import DEGRADATIONS, fit_limits
from tests.support.images import sample_images


def limits_of(modality: str) -> QualityLimits:
    limits = read_limits(ARTIFACTS_DIR, modality)
    assert limits is not None, f"{modality} ships no {QUALITY_FILE}"
    return limits


@pytest.mark.parametrize("modality", MODALITIES)
def test_every_fixture_image_passes(modality):
    limits = limits_of(modality)
    for path in sample_images(modality):
        with Image.open(path) as image:
            assert limits.problem(measure(image)) is None, path.name


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("degradation", DEGRADATIONS)
def test_a_severely_degraded_image_is_refused_for_its_reason(modality, degradation):
    reason, degrade = DEGRADATIONS[degradation]
    limits = limits_of(modality)
    refused = []
    for path in sample_images(modality):
        with Image.open(path) as image:
            refused.append(limits.problem(measure(degrade(image.convert("RGB")))) == reason)
    # Not every image: a naturally flat or soft one may stay above a limit once degraded (see quality.json).
    assert sum(refused) >= len(refused) / 2, (degradation, refused)


@pytest.mark.parametrize("modality", MODALITIES)
def test_an_image_below_the_size_limit_is_too_small(modality):
    limits = limits_of(modality)
    with Image.open(sample_images(modality)[0]) as image:
        assert limits.problem(measure(image, short_side=limits.min_short_side - 1)) == "too_small"


@pytest.mark.parametrize("modality", MODALITIES)
def test_the_shipped_limits_refuse_at_most_two_percent_of_clean_val_images(modality):
    report = json.loads((ARTIFACTS_DIR / modality / QUALITY_FILE).read_text())
    assert report["refused_clean"]["val"] <= 0.02 and report["refused_clean"]["train"] <= 0.02
    assert all(figures["refused"] >= 0.5 for figures in report["refused_degraded_val"].values())


def test_sharpness_does_not_depend_on_exposure():
    """A sharp image made dim keeps its sharpness: focus and exposure are told apart."""
    with Image.open(sample_images("chest_xray")[0]) as image:
        gray = image.convert("L")
    dim = gray.point(lambda v: v * 0.5)
    assert measure(dim).sharpness == pytest.approx(measure(gray).sharpness, rel=0.05)


# Sets whose images were shrunk for distribution; the cervical cells are crops at the microscope's own scale.
SHRUNK_SETS = ["skin_lesion", "chest_xray", "breast"]


@pytest.mark.parametrize("modality", SHRUNK_SETS)
def test_a_full_size_upload_is_not_refused_for_being_larger_than_the_training_images(modality):
    """The labelled sets were shrunk (skin to 200x150); uploads come at full size. Measured at the working size,
    a good image three times larger (and softer for the enlarging) still passes."""
    limits = limits_of(modality)
    for path in sample_images(modality):
        with Image.open(path) as image:
            large = image.convert("RGB").resize((image.width * 3, image.height * 3), Image.Resampling.BICUBIC)
        assert limits.problem(measure(large)) is None, path.name


def test_limits_sit_outside_the_training_images():
    captures = [measure(Image.open(path)) for path in sample_images("breast")]
    limits = fit_limits(captures)
    assert limits.min_brightness < min(c.brightness for c in captures)
    assert limits.max_brightness > max(c.brightness for c in captures)


def test_a_modality_without_limits_is_not_checked(tmp_path):
    assert read_limits(tmp_path, "skin_lesion") is None
