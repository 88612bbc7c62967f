"""The grouped folds: each labelled image's group, the fold of each group, and where run records live."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...data import Sample, list_class_folder
from ...modalities import get_spec

# The run records (folds, OOF predictions, soft targets, logs) are data, kept at the repository's top level.
CV_DIR = Path(__file__).resolve().parents[3] / "model_runs"
DEFAULT_DATA_ROOT = Path("../shared/datasets")
DEFAULT_BACKBONE = Path("../shared/weights/efficientnet_lite0/efficientnet_lite0_imagenet_notop.keras")
DEFAULT_RUNS_DIR = Path("training_runs_cv")  # fold models; git-ignored (training_runs*/)

N_FOLDS = 5
FOLD_SALT = "medsight-cv5"
INNER_VAL_SALT = "medsight-cv-inner"
INNER_VAL_PERCENT = 15
# BUSI has no patient ids; the same scan often appears twice with a slightly different frame.
# The dataset README found its near-duplicates with a 256-bit difference hash at Hamming distance
# <= 8. This hash (Lanczos to 17x16 of the stored JPEG) puts the README's named pair
# benign_399 / malignant_93 at 9, and pairs at 10-12 were the same scans by eye, so the cut is 12:
# 39 linked pairs in train + val, groups of at most 3 images.
DHASH_SIZE = 16
DHASH_MAX_DISTANCE = 12


def labelled_samples(modality: str, data_root: Path) -> list[Sample]:
    """train/ + val/ with the cross-validation group of each image."""
    spec = get_spec(modality)
    dataset_dir = Path(data_root) / modality
    samples = list_class_folder(dataset_dir / "train", spec) + list_class_folder(dataset_dir / "val", spec)
    if spec.group_rule.near_duplicates:
        samples = with_near_duplicate_groups(samples)
    return samples


def portable(text: str, root: Path) -> str:
    """text with the checkout's absolute paths made relative to it (../shared for the data and weights),
    so that what is committed names no machine's folders."""
    return text.replace(f"{root.parent}/shared/", "../shared/").replace(f"{root}/", "")


def relative_path(sample: Sample) -> str:
    """'train/benign/benign_12.jpg': the sample's path below the modality's dataset folder."""
    return "/".join(Path(sample.path).parts[-3:])


def dhash(path: Path, size: int = DHASH_SIZE) -> np.ndarray:
    """Difference hash: size x size bits, whether each pixel is brighter than its left neighbour."""
    from PIL import Image

    with Image.open(path) as image:
        small = np.asarray(image.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS), dtype=np.int16)
    return (small[:, 1:] > small[:, :-1]).ravel()


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int = DHASH_MAX_DISTANCE) -> list[tuple[int, int]]:
    distances = (hashes[:, None, :] != hashes[None, :, :]).sum(axis=2)
    i, j = np.nonzero(np.triu(distances <= max_distance, k=1))
    return list(zip(i.tolist(), j.tolist(), strict=True))


def merge_groups(samples: list[Sample], pairs) -> list[Sample]:
    """Union the groups of each linked pair; a merged group is named by its smallest member id."""
    parent = {s.group: s.group for s in samples}

    def root(g):
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for a, b in pairs:
        ra, rb = root(samples[a].group), root(samples[b].group)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [replace(s, group=root(s.group)) for s in samples]


def with_near_duplicate_groups(samples: list[Sample]) -> list[Sample]:
    hashes = np.stack([dhash(s.path) for s in samples])
    return merge_groups(samples, near_duplicate_pairs(hashes))


def _salted(value: str, salt: str = FOLD_SALT) -> str:
    return hashlib.sha1(f"{salt}:{value}".encode()).hexdigest()


def assign_folds(samples: list[Sample], n_folds: int = N_FOLDS, salt: str = FOLD_SALT) -> dict[str, int]:
    """group -> fold. Whole groups only; each class spread about evenly over the folds.

    Groups go largest first (ties in salted-sha1 order, so input order does not matter) to the
    fold where the group's classes are least filled relative to their per-fold target; ties go to
    the fold with fewer images, then the lower index.
    """
    labels = sorted({s.label for s in samples})
    index = {label: k for k, label in enumerate(labels)}
    group_counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(labels)))
    for s in samples:
        group_counts[s.group][index[s.label]] += 1
    target = np.zeros(len(labels))
    for counts in group_counts.values():
        target += counts
    target /= n_folds
    fill = np.zeros((n_folds, len(labels)))
    order = sorted(group_counts, key=lambda g: (-group_counts[g].sum(), _salted(g, salt)))
    assignment = {}
    for group in order:
        counts = group_counts[group]
        after = (fill + counts) / target  # fill ratio per fold and class if the group went there
        cost = (after * counts).sum(axis=1) / counts.sum()
        sizes = fill.sum(axis=1)
        fold = min(range(n_folds), key=lambda k: (round(cost[k], 9), sizes[k], k))
        fill[fold] += counts
        assignment[group] = fold
    return assignment


def folds_path(modality: str, cv_dir: Path = CV_DIR) -> Path:
    return Path(cv_dir) / modality / "folds.json"


def write_folds(modality: str, data_root: Path, cv_dir: Path = CV_DIR) -> dict:
    samples = labelled_samples(modality, data_root)
    group_fold = assign_folds(samples)
    sizes = Counter(s.group for s in samples)
    spec = get_spec(modality)
    table = {name: [0] * N_FOLDS for name in spec.class_names}
    for s in samples:
        table[s.label][group_fold[s.group]] += 1
    payload = {
        "modality": modality,
        "n_folds": N_FOLDS,
        "rule": (
            "train/ + val/ pooled; whole groups per fold, largest groups first, each to the fold where "
            f"its classes are least filled (salt {FOLD_SALT!r} orders equal-sized groups)"
        ),
        "group_rule": spec.group_rule.description
        + (
            f"; images whose {DHASH_SIZE}x{DHASH_SIZE} difference hashes differ in <= {DHASH_MAX_DISTANCE} "
            f"bits are one group ({spec.group_rule.near_duplicates})"
            if spec.group_rule.near_duplicates
            else ""
        ),
        "n_images": len(samples),
        "n_groups": len(group_fold),
        "multi_image_groups": sum(1 for n in sizes.values() if n > 1),
        "class_counts_per_fold": table,
        "folds": {relative_path(s): group_fold[s.group] for s in sorted(samples, key=relative_path)},
        # Only where grouping needed more than the spec's rule: the near-duplicate clusters.
        "groups": {relative_path(s): s.group for s in sorted(samples, key=relative_path) if sizes[s.group] > 1}
        if spec.group_rule.near_duplicates
        else None,
    }
    path = folds_path(modality, cv_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return payload


def load_folds(modality: str, samples: list[Sample], cv_dir: Path = CV_DIR) -> list[int]:
    """The committed fold of each sample; refuses a folds.json that does not cover this sample list."""
    path = folds_path(modality, cv_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `python -m cnn_model.training.crossval folds --modality {modality}`"
        )
    folds = json.loads(path.read_text())["folds"]
    paths = [relative_path(s) for s in samples]
    if set(paths) != set(folds):
        missing, extra = set(paths) - set(folds), set(folds) - set(paths)
        raise ValueError(f"{path} does not match the data ({len(missing)} images missing, {len(extra)} extra)")
    return [folds[p] for p in paths]


def inner_split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(fit, inner val) by whole groups: 15% of groups by salted sha1, for the inner_val epoch rule."""
    held = [int(_salted(s.group, INNER_VAL_SALT), 16) % 100 < INNER_VAL_PERCENT for s in samples]
    return [s for s, h in zip(samples, held, strict=True) if not h], [
        s for s, h in zip(samples, held, strict=True) if h
    ]


def fold_stem(modality: str, candidate: str, fold: int, cv_dir: Path = CV_DIR) -> Path:
    return Path(cv_dir) / modality / candidate / f"fold{fold}"


def teacher_path(modality: str, candidate: str, fold: int, cv_dir: Path = CV_DIR) -> Path:
    return fold_stem(modality, candidate, fold, cv_dir).with_suffix(".teacher.npz")
