"""Fit and check the same-lesion distance: `python -m cnn_model.training.lesion_match skin_lesion`.

1. Every skin photo of train/ and val/ is described by the shipped gate's feature network (the same
   function and runtime that serve it).
2. Pairs: every pair of photos of one lesion (HAM10000's lesion_id, in metadata.csv), random pairs of
   photos of two lesions, and "hard" pairs of two lesions with the same diagnosis at the same body site.
3. On train/, grouped 5-fold cross-validation by lesion: for each candidate (shrinkage of the within-lesion
   covariance, number of directions) the projection is fitted on four folds and the held-out fold's
   same-lesion distances are pooled; the threshold is their SAME_LESION_SHARE percentile. The candidate
   that calls most held-out different-lesion pairs different at that threshold is chosen.
4. The shipped projection is fitted on all of train/ with the cross-fitted threshold, and val/ (lesions
   never seen in fitting) gives the figures: the share of one lesion's pairs called the same, and of two
   lesions' pairs called different. Written to model_runs/lesion_match/report.json.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..card import ARTIFACTS_DIR
from ..gate import GATE_DIR_NAME, ModalityGate, preprocess_for_gate
from ..lesion_match import LESION_MATCH_FILE, LesionMatcher

SAME_LESION_SHARE = 0.95
SHRINKAGES = (0.2, 0.5, 0.8)
DIRECTIONS = (8, 16, 32)
N_FOLDS = 5
RANDOM_PAIRS = 20_000
HARD_PAIRS = 5_000
SEED = 0
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = PROJECT_ROOT.parent / "shared" / "datasets"
REPORT_PATH = PROJECT_ROOT / "model_runs" / "lesion_match" / "report.json"


@dataclass(frozen=True)
class Photos:
    features: np.ndarray  # (N, D)
    lesion: np.ndarray  # (N,) lesion ids
    diagnosis: np.ndarray
    site: np.ndarray
    split: np.ndarray


@dataclass(frozen=True)
class Pairs:
    same: np.ndarray  # (P, 2) indices into Photos
    different: np.ndarray
    hard: np.ndarray  # different lesions, same diagnosis and body site


def describe(data_root: Path, modality: str, gate: ModalityGate) -> Photos:
    with open(data_root / modality / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    paths = [data_root / modality / r["path"] for r in rows]
    features = np.stack([gate.network.features(preprocess_for_gate(path)[None])[0] for path in paths])

    def column(name: str) -> np.ndarray:
        return np.array([r[name] for r in rows])

    return Photos(features, column("lesion_id"), column("dx"), column("localization"), column("split"))


def pairs_of(photos: Photos, indices: np.ndarray, rng: np.random.Generator) -> Pairs:
    by_lesion: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        by_lesion[photos.lesion[i]].append(int(i))
    same = [(a, b) for members in by_lesion.values() for n, a in enumerate(members) for b in members[n + 1 :]]
    different, hard = [], []
    for _ in range(200 * (RANDOM_PAIRS + HARD_PAIRS)):
        if len(different) >= RANDOM_PAIRS and len(hard) >= HARD_PAIRS:
            break
        a, b = rng.choice(indices, 2)
        if photos.lesion[a] == photos.lesion[b]:
            continue
        if len(different) < RANDOM_PAIRS:
            different.append((a, b))
        if len(hard) < HARD_PAIRS and photos.diagnosis[a] == photos.diagnosis[b] and photos.site[a] == photos.site[b]:
            hard.append((a, b))
    return Pairs(np.array(same), np.array(different), np.array(hard))


def fit(features: np.ndarray, same: np.ndarray, fit_rows: np.ndarray, shrinkage: float, directions: int):
    """(mean, scale, projection): linear discriminant directions of lesions, scaled to unit within-lesion spread."""
    mean = features[fit_rows].mean(axis=0)
    scale = features[fit_rows].std(axis=0) + 1e-6
    z = (features - mean) / scale
    steps = z[same[:, 0]] - z[same[:, 1]]
    within = steps.T @ steps / (2 * len(steps))
    within = (1 - shrinkage) * within + shrinkage * np.trace(within) / len(within) * np.eye(len(within))
    total = np.cov(z[fit_rows].T)
    values, vectors = np.linalg.eig(np.linalg.solve(within, total))
    order = np.argsort(-values.real)[:directions]
    projection = vectors[:, order].real
    projection /= np.sqrt(np.einsum("dk,de,ek->k", projection, within, projection))
    return mean, scale, projection


def distances(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return np.linalg.norm(embeddings[pairs[:, 0]] - embeddings[pairs[:, 1]], axis=1)


def rates(embeddings: np.ndarray, pairs: Pairs, threshold: float) -> dict[str, float | int]:
    return {
        "same_lesion_pairs": len(pairs.same),
        "same_called_same": round(float(np.mean(distances(embeddings, pairs.same) <= threshold)), 4),
        "different_lesion_pairs": len(pairs.different),
        "different_called_different": round(float(np.mean(distances(embeddings, pairs.different) > threshold)), 4),
        "hard_pairs": len(pairs.hard),
        "hard_called_different": round(float(np.mean(distances(embeddings, pairs.hard) > threshold)), 4),
    }


def cross_fitted(photos: Photos, train: np.ndarray, pairs: Pairs, rng, shrinkage: float, directions: int):
    """The threshold from held-out same-lesion distances, and the held-out share of different pairs called so."""
    lesions = rng.permutation(np.unique(photos.lesion[train]))
    fold_of = {lesion: n % N_FOLDS for n, lesion in enumerate(lesions)}
    fold = np.array([fold_of.get(lesion, -1) for lesion in photos.lesion])
    held_same, held_different = [], []
    for f in range(N_FOLDS):
        fit_same = pairs.same[fold[pairs.same[:, 0]] != f]
        mean, scale, projection = fit(photos.features, fit_same, train[fold[train] != f], shrinkage, directions)
        embeddings = ((photos.features - mean) / scale) @ projection
        held_same.append(distances(embeddings, pairs.same[fold[pairs.same[:, 0]] == f]))
        out = pairs.different[(fold[pairs.different[:, 0]] == f) & (fold[pairs.different[:, 1]] == f)]
        held_different.append(distances(embeddings, out))
    threshold = float(np.percentile(np.concatenate(held_same), SAME_LESION_SHARE * 100))
    return threshold, float(np.mean(np.concatenate(held_different) > threshold))


def calibrate(modality: str, data_root: Path, artifacts_dir: Path) -> dict:
    gate = ModalityGate(artifacts_dir / GATE_DIR_NAME)
    photos = describe(data_root, modality, gate)
    rng = np.random.default_rng(SEED)
    train, val = np.flatnonzero(photos.split == "train"), np.flatnonzero(photos.split == "val")
    train_pairs, val_pairs = pairs_of(photos, train, rng), pairs_of(photos, val, rng)
    candidates = {
        (shrinkage, directions): cross_fitted(
            photos, train, train_pairs, np.random.default_rng(SEED), shrinkage, directions
        )
        for shrinkage in SHRINKAGES
        for directions in DIRECTIONS
    }
    (shrinkage, directions), (threshold, _) = max(candidates.items(), key=lambda item: item[1][1])
    mean, scale, projection = fit(photos.features, train_pairs.same, train, shrinkage, directions)
    matcher = LesionMatcher(modality, mean, scale, projection, threshold, SAME_LESION_SHARE)
    matcher.save(artifacts_dir / GATE_DIR_NAME / LESION_MATCH_FILE)
    embeddings = ((photos.features - mean) / scale) @ projection
    report = {
        "gate": {"name": gate.name, "version": gate.version},
        "chosen": {"shrinkage": shrinkage, "directions": directions, "threshold": round(threshold, 4)},
        "cross_validated": {
            f"shrinkage {s}, {k} directions": {"threshold": round(t, 4), "different_called_different": round(d, 4)}
            for (s, k), (t, d) in candidates.items()
        },
        "train": rates(embeddings, train_pairs, threshold),
        "val": rates(embeddings, val_pairs, threshold),
        "lesions_with_several_photos": {
            split: int(sum(1 for n in np.unique(photos.lesion[rows], return_counts=True)[1] if n > 1))
            for split, rows in (("train", train), ("val", val))
        },
    }
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modality", help="a modality whose metadata.csv names each photo's lesion_id")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--artifacts-dir", type=Path, default=ARTIFACTS_DIR)
    args = parser.parse_args(argv)
    print(json.dumps(calibrate(args.modality, args.data_root, args.artifacts_dir), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
