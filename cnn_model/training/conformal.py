"""Fitting a card's prediction sets (cnn_model.conformal) on out-of-fold predictions, and what they give.

Split-conformal, one quantile per class (Mondrian): for class k with n_k calibration images, the
ceil((n_k + 1) * coverage)-th smallest score 1 - p_k(true class), i.e. the empirical quantile at level
ceil((n_k + 1) * coverage) / n_k. The calibration images are the pooled out-of-fold predictions of the
recipe's grouped cross-validation, served as the card serves (its temperature, prevalence correction),
so every one was predicted by a model that never trained on it; or, for a distilled student with
enough val/ images per class, the student's own val/ predictions (cnn_model.training.scoring decides).
The report gives the sets on the calibration set itself (in sample for the thresholds) and cross-fitted
(each fold's sets from thresholds fitted on the other folds), and on the other candidate set.
"""

from __future__ import annotations

import math

import numpy as np

from ..conformal import EMPTY_SET_FILL, PredictionSets
from ..specs import ModalitySpec

METHOD = (
    "class-conditional (Mondrian) split-conformal prediction: class k is in an image's set when 1 - p_k is at "
    "most class k's threshold, the ceil((n_k + 1) * coverage)-th smallest 1 - p(true class) among the n_k "
    "calibration images of class k"
)
SCORE = "1 - served probability of the class (after the card's temperature and prevalence correction)"


def class_thresholds(probabilities: np.ndarray, y_true: np.ndarray, coverage: float) -> np.ndarray:
    """Per class, the conformal threshold on 1 - p_k; 1.0 (every image) where a class has too few images."""
    n_classes = probabilities.shape[1]
    thresholds = np.ones(n_classes)
    for k in range(n_classes):
        scores = np.sort(1.0 - probabilities[y_true == k, k])
        rank = math.ceil((len(scores) + 1) * coverage)  # 1-based; beyond n: no finite quantile
        if 1 <= rank <= len(scores):
            thresholds[k] = scores[rank - 1]
    return thresholds


def rounded_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """Six decimals, rounded up: a calibration image on the exact threshold stays in its set."""
    return np.ceil(np.asarray(thresholds) * 1e6) / 1e6


def set_figures(raw: np.ndarray, served: np.ndarray, y_true: np.ndarray, class_names) -> dict:
    """Coverage overall and per class, mean set size, the share of single-label sets: as served, and for the
    conformal sets before an empty one is filled (`conformal_sets`, the sets the guarantee is about)."""
    rows = np.arange(len(y_true))

    def r(value) -> float:
        return round(float(value), 4)

    def figures(members: np.ndarray) -> dict:
        size = members.sum(axis=1)
        covered = members[rows, y_true]
        single = size == 1
        return {
            "coverage": r(covered.mean()),
            "mean_set_size": r(size.mean()),
            "single_label_share": r(single.mean()),
            "single_label_accuracy": r(covered[single].mean()) if single.any() else None,
        }

    present = [(k, name) for k, name in enumerate(class_names) if (y_true == k).any()]
    return {
        "n": int(len(y_true)),
        **figures(served),
        "coverage_by_class": {
            name: {"n": int((y_true == k).sum()), "coverage": r(served[y_true == k, k].mean())} for k, name in present
        },
        "conformal_sets": {
            **figures(raw),
            "empty_share": r((raw.sum(axis=1) == 0).mean()),
            "coverage_by_class": {name: r(raw[y_true == k, k].mean()) for k, name in present},
        },
    }


def cross_fitted_sets(folds: list[dict], coverage: float, class_names) -> dict:
    """Each fold's sets from thresholds fitted on the other folds' served predictions, pooled."""
    raw, served, truth, fold_thresholds = [], [], [], []
    for k, fold in enumerate(folds):
        others = [g for j, g in enumerate(folds) if j != k]
        thresholds = rounded_thresholds(
            class_thresholds(
                np.concatenate([g["served"] for g in others]), np.concatenate([g["y_true"] for g in others]), coverage
            )
        )
        fold_thresholds.append(thresholds)
        sets = PredictionSets(coverage, thresholds)
        raw.append(sets.members(fold["served"]))
        served.append(sets.served(fold["served"]))
        truth.append(fold["y_true"])
    return {
        **set_figures(np.concatenate(raw), np.concatenate(served), np.concatenate(truth), class_names),
        "fold_thresholds": {
            name: [round(float(t[k]), 6) for t in fold_thresholds] for k, name in enumerate(class_names)
        },
        "rule": f"each of {len(folds)} folds' sets from thresholds fitted on the other folds' predictions",
    }


def conformal_section(
    spec: ModalitySpec,
    folds: list[dict],
    source: str,
    choice: str,
    coverage: float | None = None,
    checks: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict:
    """The card's `conformal` section.

    folds: the calibration predictions in folds (the recipe's cross-validation folds, or a student's val/ in
    grouped folds), each with "y_true" and "served" (probabilities served as the card serves). source: where
    they are and how they were served, in words; choice: why they stand for the shipped model. checks: name ->
    (served probabilities, labels) of other images scored with the same thresholds.
    """
    coverage = spec.set_coverage if coverage is None else coverage
    names = spec.class_names
    y = np.concatenate([f["y_true"] for f in folds])
    p = np.concatenate([f["served"] for f in folds])
    thresholds = rounded_thresholds(class_thresholds(p, y, coverage))
    sets = PredictionSets(coverage, thresholds)
    report = {
        "calibration_set": set_figures(sets.members(p), sets.served(p), y, names),
        "cross_fitted": cross_fitted_sets(folds, coverage, names),
    }
    for name, (probabilities, labels) in (checks or {}).items():
        report[name] = set_figures(sets.members(probabilities), sets.served(probabilities), labels, names)
    return {
        "method": METHOD,
        "score": SCORE,
        "coverage": coverage,
        "thresholds": {name: float(t) for name, t in zip(names, thresholds, strict=True)},
        "calibration_source": source,
        "calibration_n": int(len(y)),
        "calibration_counts": {name: int((y == k).sum()) for k, name in enumerate(names)},
        "calibration_choice": choice,
        "empty_set_rule": (
            f"a set the thresholds leave empty (no class as typical as {1 - coverage:.0%} of its own images) is "
            f"given the {EMPTY_SET_FILL} most probable classes and reads as uncertain; figures are for the sets as "
            "served, `conformal_sets` for the sets before that"
        ),
        "report": report,
    }
