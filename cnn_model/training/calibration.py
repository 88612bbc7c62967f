"""Fitting the temperature a card serves: on pooled out-of-fold predictions, or on a student's own val.

Applying it and measuring calibration (ECE, reliability bins) are cnn_model.calibration.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..calibration import apply_temperature, expected_calibration_error, negative_log_likelihood, reliability_bins

# Search range for T: below 1 sharpens, above 1 softens; beyond these the data is degenerate.
TEMPERATURE_RANGE = (0.2, 10.0)


def fit_temperature(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """The T minimising held-out negative log-likelihood (a log-spaced grid, then a finer one around its best)."""
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    best = 0.0
    for width, points in ((high - low, 201), (0.05, 101)):
        grid = np.linspace(max(low, best - width / 2), min(high, best + width / 2), points)
        losses = [negative_log_likelihood(apply_temperature(probabilities, float(np.exp(t))), y_true) for t in grid]
        best = float(grid[int(np.argmin(losses))])
    return round(float(np.exp(best)), 4)


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
