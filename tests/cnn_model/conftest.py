"""A tiny labelled dataset for the training tests: a few real breast images per class, copied from ../shared."""

import shutil

import pytest

from cnn_model.modalities import SPECS

IMAGES_PER_CLASS = {"train": 6, "val": 2}


@pytest.fixture
def tiny_breast_dataset(tmp_path, datasets_root):
    root = tmp_path / "datasets"
    for split, count in IMAGES_PER_CLASS.items():
        for label in SPECS["breast"].class_names:
            target = root / "breast" / split / label
            target.mkdir(parents=True)
            for path in sorted((datasets_root / "breast" / split / label).iterdir())[:count]:
                shutil.copy(path, target / path.name)
    return root
