"""Listing a dataset folder, grouping its images and carving group-aware slices."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .preprocessing import preprocess_for_model
from .specs import ModalitySpec

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# The share of train groups kept aside as our own test slice (never trained on, never tuned on).
TEST_SLICE_PERCENT = 15
TEST_SLICE_SALT = "medsight-test-slice"


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    group: str


def list_class_folder(folder: Path, spec: ModalitySpec) -> list[Sample]:
    """Every image under folder/CLASS/ for the spec's classes; unknown folders are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such data folder: {folder}")
    unknown = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in spec.class_names)
    if unknown:
        raise ValueError(f"{folder}: folders {unknown} are not classes of {spec.name} {list(spec.class_names)}")
    samples = []
    for label in spec.class_names:
        class_dir = folder / label
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                samples.append(Sample(path, label, spec.group_rule(path)))
    if not samples:
        raise ValueError(f"{folder}: no images found in class folders {list(spec.class_names)}")
    return samples


def in_test_slice(group: str) -> bool:
    digest = hashlib.sha1(f"{TEST_SLICE_SALT}:{group}".encode()).hexdigest()
    return int(digest, 16) % 100 < TEST_SLICE_PERCENT


def split_test_slice(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(fit, test) by whole groups, so no lesion/patient/smear straddles the two."""
    fit = [s for s in samples if not in_test_slice(s.group)]
    test = [s for s in samples if in_test_slice(s.group)]
    return fit, test


def load_arrays(
    samples: list[Sample], spec: ModalitySpec, class_names, dtype=np.uint8
) -> tuple[np.ndarray, np.ndarray]:
    """Preprocess every sample with the serving function; uint8 keeps the whole set in memory (float32: the pixels
    exactly as served, where uint8 truncates resampled values)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(lambda s: preprocess_for_model(s.path, spec).astype(dtype), samples))
    labels = np.array([class_names.index(s.label) for s in samples], dtype=np.int32)
    return np.stack(images), labels
