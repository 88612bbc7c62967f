"""A tiny labelled dataset for the training tests (a few real breast images per class, copied from ../shared), and
one quick training run on it."""

import shutil

import pytest

from cnn_model.modalities import SPECS
from cnn_model.training.pipeline import train_modality

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


def train_tiny_breast(dataset, tmp_path, **overrides):
    """One fine-tune epoch of the from-scratch CNN at 32 px, exported to tmp_path/artifacts; returns that folder."""
    artifacts = tmp_path / "artifacts"
    train_modality(
        "breast",
        data_root=dataset,
        backbone=None,
        run_dir=tmp_path / "runs",
        artifacts_dir=artifacts,
        head_epochs=0,
        finetune_epochs=1,
        input_size=32,
        export_options={"bootstrap_rounds": 10, "min_agreement": 0.0},
        **overrides,
    )
    return artifacts
