"""Confidence that means what it says: temperature scaling fitted on out-of-fold predictions.

A network fine-tuned with cross-entropy on a few hundred images ends up overconfident: cervical
fold models said 0.9 where they were right 0.6-0.8 of the time. Dividing the logits by one
temperature T > 1 (fitted by minimising the negative log-likelihood of held-out labels) softens
every answer alike, so it never changes the top-1 class, and brings the stated confidence back
in line with the hit rate. The temperature is fitted on the pooled out-of-fold predictions of the
recipe's grouped cross-validation, and scored there cross-fitted (each fold calibrated with the
temperature the other folds give), so val stays a check.

Expected calibration error (ECE): the shown label's confidence in 10 equal-width bins, the gap
between mean confidence and accuracy per bin, weighted by the bin's share of images.

No TensorFlow here: the serving runtime applies the temperature through cnn_model.decision.
"""

from __future__ import annotations

import hashlib

import numpy as np

ECE_BINS = 10
# Search range for T: below 1 sharpens, above 1 softens; beyond these the data is degenerate.
TEMPERATURE_RANGE = (0.2, 10.0)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities the network would give with its logits divided by T."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    picked = probabilities[np.arange(len(y_true)), np.asarray(y_true)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def fit_temperature(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """The T minimising held-out negative log-likelihood (a log-spaced grid, then a finer one around its best)."""
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    best = 0.0
    for width, points in ((high - low, 201), (0.05, 101)):
        grid = np.linspace(max(low, best - width / 2), min(high, best + width / 2), points)
        losses = [negative_log_likelihood(apply_temperature(probabilities, float(np.exp(t))), y_true) for t in grid]
        best = float(grid[int(np.argmin(losses))])
    return round(float(np.exp(best)), 4)


def _bins(probabilities, y_true, bins, weights):
    """(low, high, images, weight share, mean confidence, accuracy) per bin, unrounded."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    weights = np.ones(len(confidence)) if weights is None else np.asarray(weights, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = (confidence > low) & (confidence <= high) if k else (confidence >= low) & (confidence <= high)
        w = weights[inside]
        filled = inside.any() and w.sum() > 0
        rows.append(
            (
                low,
                high,
                int(inside.sum()),
                float(w.sum() / weights.sum()),
                float(np.average(confidence[inside], weights=w)) if filled else None,
                float(np.average(correct[inside], weights=w)) if filled else None,
            )
        )
    return rows


def reliability_bins(
    probabilities: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS, weights: np.ndarray | None = None
) -> list[dict]:
    """Per confidence bin of the shown (top-1) label: its range, images, mean confidence and accuracy.

    weights: per image (e.g. deployment prior / sample prior of its class, to score a rebalanced set at
    the mix the service sees); "weight" is then the bin's share of the total weight.
    """

    def r(value):
        return None if value is None else round(value, 4)

    return [
        {
            "low": round(low, 2),
            "high": round(high, 2),
            "n": n,
            "weight": r(share),
            "confidence": r(conf),
            "accuracy": r(acc),
        }
        for low, high, n, share, conf, acc in _bins(probabilities, y_true, bins, weights)
    ]


def expected_calibration_error(
    probabilities: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS, weights: np.ndarray | None = None
) -> float:
    rows = _bins(probabilities, y_true, bins, weights)
    return round(sum(share * abs(conf - acc) for _, _, n, share, conf, acc in rows if conf is not None), 4)


def oof_temperature(folds: list[dict]) -> dict:
    """Temperature fitted on pooled out-of-fold probabilities, and how calibrated it leaves them.

    folds: one {"y_true", "probabilities"} per fold (the network's own probabilities, before any
    prevalence correction). The cross-fitted ECE calibrates each fold with the temperature fitted on
    the other folds: the honest estimate of what fitting it this way delivers on new images.
    """
    y = np.concatenate([f["y_true"] for f in folds])
    p = np.concatenate([f["probabilities"] for f in folds])
    temperature = fit_temperature(p, y)
    cross_fitted, fold_temperatures = [], []
    for k, fold in enumerate(folds):
        others = [g for j, g in enumerate(folds) if j != k]
        t = fit_temperature(
            np.concatenate([g["probabilities"] for g in others]), np.concatenate([g["y_true"] for g in others])
        )
        fold_temperatures.append(t)
        cross_fitted.append(apply_temperature(fold["probabilities"], t))
    return _fit_report(p, y, temperature, np.concatenate(cross_fitted), fold_temperatures)


def val_temperature(probabilities: np.ndarray, y_true: np.ndarray, groups: list[str]) -> dict:
    """Temperature fitted on a model's own val predictions, where no out-of-fold predictions of it exist.

    A distilled student is one model trained on all of train/: val is the only labelled data it never
    saw. Its ECE after the fit is in-sample; the cross-fitted figure fits T on one half of val's
    groups (salted sha1) and scores the other half, both ways round.
    """
    halves = np.array([int(hashlib.sha1(f"medsight-calibration:{g}".encode()).hexdigest(), 16) % 2 for g in groups])
    temperature = fit_temperature(probabilities, y_true)
    cross_fitted = np.empty_like(probabilities)
    fold_temperatures = []
    for half in (0, 1):
        fit, score = halves != half, halves == half
        t = fit_temperature(probabilities[fit], y_true[fit])
        fold_temperatures.append(t)
        cross_fitted[score] = apply_temperature(probabilities[score], t)
    return _fit_report(probabilities, y_true, temperature, cross_fitted, fold_temperatures)


def _fit_report(probabilities, y_true, temperature, cross_fitted, fold_temperatures) -> dict:
    """What a temperature fit did: ECE and NLL before and after, the cross-fitted ECE, reliability bins."""
    calibrated = apply_temperature(probabilities, temperature)
    return {
        "temperature": temperature,
        "n": int(len(y_true)),
        "ece_before": expected_calibration_error(probabilities, y_true),
        "ece_after": expected_calibration_error(calibrated, y_true),
        "ece_cross_fitted": expected_calibration_error(cross_fitted, y_true),
        "fold_temperatures": fold_temperatures,
        "nll_before": round(negative_log_likelihood(probabilities, y_true), 4),
        "nll_after": round(negative_log_likelihood(calibrated, y_true), 4),
        "reliability_before": reliability_bins(probabilities, y_true),
        "reliability_after": reliability_bins(calibrated, y_true),
    }
