"""Pytest plugin: real images for tests, from the committed fixture set or, where a test needs them all, the datasets.

Most tests need *an* image of a modality: ``sample_image`` gives one from tests/fixtures/images, a few
validation images per modality committed with the tests (sources and licences in the README there),
so the suite runs from any clone. Tests that need whole datasets (evaluation reproducing a model card,
preprocessing parity with the training pipeline, training) ask for the ``datasets_root`` fixture:
without ../shared/datasets beside the checkout they are skipped, or failed where
MEDSIGHT_REQUIRE_DATASETS=1 (CI sets it, so they can never be skipped there unnoticed).
Loaded from tests/conftest.py; every test asking for ``datasets_root`` gets the ``datasets`` marker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnn_model.modalities import get_spec
from config import PROJECT_ROOT

FIXTURE_IMAGES_DIR = PROJECT_ROOT / "tests" / "fixtures" / "images"
DATASETS_DIR = PROJECT_ROOT.parent / "shared" / "datasets"
REQUIRE_DATASETS_VARIABLE = "MEDSIGHT_REQUIRE_DATASETS"


def sample_images(modality: str, class_name: str | None = None) -> list[Path]:
    """The committed fixture images of the modality (of the class, if given), in a stable order."""
    folder = FIXTURE_IMAGES_DIR / modality
    images = sorted(p for p in folder.glob(f"{class_name or '*'}/*") if p.is_file())
    assert images, f"no fixture images for {modality} {class_name or ''} in {folder}"
    return images


def sample_image(modality: str, class_name: str | None = None) -> Path:
    """One real validation image of the modality: of the class if given, else of the spec's first class."""
    return sample_images(modality, class_name or get_spec(modality).class_names[0])[0]


def datasets_required() -> bool:
    return os.environ.get(REQUIRE_DATASETS_VARIABLE, "").strip() not in ("", "0")


@pytest.fixture(scope="session")
def datasets_root() -> Path:
    """The labelled datasets (../shared/datasets): skip the test without them, or fail it where they are required."""
    if DATASETS_DIR.is_dir():
        return DATASETS_DIR
    reason = f"needs the labelled datasets in ../shared/datasets, which is not beside this checkout ({DATASETS_DIR})"
    if datasets_required():
        pytest.fail(f"{reason}; {REQUIRE_DATASETS_VARIABLE} is set, so this is a failure", pytrace=False)
    pytest.skip(f"{reason}; set {REQUIRE_DATASETS_VARIABLE}=1 to make this a failure")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "datasets_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.datasets)
