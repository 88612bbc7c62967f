"""Classification metrics in plain NumPy, so evaluation needs no ML framework."""

from __future__ import annotations

import numpy as np

from .calibration import expected_calibration_error
from .decision import DecisionPolicy


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties counted half."""
    is_positive = is_positive.astype(bool)
    n_pos, n_neg = int(is_positive.sum()), int((~is_positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average ranks over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(is_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="mergesort")
    hits = is_positive[order].astype(bool)
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(~hits) / max((~hits).sum(), 1)])
    return fpr, tpr


def macro_ovr_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    aucs = [roc_auc(y_true == k, probabilities[:, k]) for k in range(probabilities.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    recalls = [np.mean(y_pred[y_true == k] == k) for k in range(n_classes) if np.any(y_true == k)]
    return float(np.mean(recalls))


def accuracy_at_prevalence(y_true: np.ndarray, y_pred: np.ndarray, prevalence: np.ndarray) -> float:
    """Accuracy the same per-class recalls give on a population with this class mix.

    Classes absent from y_true are left out and the mix renormalised over the rest.
    """
    present = [k for k in range(len(prevalence)) if np.any(y_true == k)]
    weights = prevalence[present] / prevalence[present].sum()
    recalls = np.array([np.mean(y_pred[y_true == k] == k) for k in present])
    return float((weights * recalls).sum())


def _bootstrap(y_true, probabilities, n_classes, rounds=1000, seed=0, prevalence=None) -> dict:
    """95% percentile intervals for accuracy, balanced accuracy and macro AUC."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    draws = {"accuracy": [], "balanced_accuracy": [], "macro_auc": []}
    if prevalence is not None:
        draws["accuracy_at_prevalence"] = []
    y_pred = probabilities.argmax(axis=1)
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        t, p = y_true[idx], y_pred[idx]
        draws["accuracy"].append(np.mean(t == p))
        draws["balanced_accuracy"].append(balanced_accuracy(t, p, n_classes))
        draws["macro_auc"].append(macro_ovr_auc(t, probabilities[idx]))
        if prevalence is not None:
            draws["accuracy_at_prevalence"].append(accuracy_at_prevalence(t, p, prevalence))
    return {
        k: [round(float(np.nanpercentile(v, 2.5)), 4), round(float(np.nanpercentile(v, 97.5)), 4)]
        for k, v in draws.items()
    }


def classification_report(
    y_true,
    probabilities,
    class_names,
    positive_classes,
    *,
    bootstrap_rounds=1000,
    predicted_positive=None,
    positive_rule=None,
    prevalence=None,
) -> dict:
    """Every figure a model card carries, computed from true labels and class probabilities.

    predicted_positive, positive_rule: the served malignant/abnormal flags and their rule in words
    (cnn_model.decision); None: positive when the top-1 class is a positive class.
    prevalence: class counts of the population the service expects; adds accuracy_at_prevalence.
    """
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n_classes = len(class_names)
    y_pred = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    per_class = {}
    for k, name in enumerate(class_names):
        support = int(matrix[k].sum())
        predicted = int(matrix[:, k].sum())
        per_class[name] = {
            "precision": round(float(matrix[k, k] / predicted), 4) if predicted else None,
            "recall": round(float(matrix[k, k] / support), 4) if support else None,
            "support": support,
            "auc": _rounded(roc_auc(y_true == k, probabilities[:, k])),
        }
    positive_idx = [class_names.index(c) for c in positive_classes]
    truth_positive = np.isin(y_true, positive_idx)
    positive_score = probabilities[:, positive_idx].sum(axis=1)
    if predicted_positive is None:
        predicted_positive = np.isin(y_pred, positive_idx)
        positive_rule = DecisionPolicy().describe()
    binary = {
        "positive_classes": list(positive_classes),
        "rule": positive_rule,
        "sensitivity": _ratio(np.sum(truth_positive & predicted_positive), truth_positive.sum()),
        "specificity": _ratio(np.sum(~truth_positive & ~predicted_positive), (~truth_positive).sum()),
        "auc": _rounded(roc_auc(truth_positive, positive_score)),
        "positives": int(truth_positive.sum()),
        "negatives": int((~truth_positive).sum()),
    }
    report = {
        "n": int(len(y_true)),
        "accuracy": round(float(np.mean(y_true == y_pred)), 4),
        "balanced_accuracy": round(balanced_accuracy(y_true, y_pred, n_classes), 4),
        "macro_auc": _rounded(macro_ovr_auc(y_true, probabilities)),
        # How far the shown label's stated confidence is from its hit rate (10 bins; cnn_model.calibration).
        "expected_calibration_error": expected_calibration_error(probabilities, y_true),
    }
    mix = None
    if prevalence is not None:
        mix = np.array([prevalence[name] for name in class_names], dtype=np.float64)
        report["accuracy_at_prevalence"] = round(accuracy_at_prevalence(y_true, y_pred, mix), 4)
    report.update(
        {
            "per_class": per_class,
            "confusion_matrix": {"labels": list(class_names), "rows_true_cols_predicted": matrix.tolist()},
            "binary": binary,
        }
    )
    if bootstrap_rounds:
        report["ci95"] = _bootstrap(y_true, probabilities, n_classes, rounds=bootstrap_rounds, prevalence=mix)
    return report


def _ratio(numerator, denominator):
    return round(float(numerator) / float(denominator), 4) if denominator else None


def _rounded(value: float):
    return None if np.isnan(value) else round(float(value), 4)
