"""Temperature scaling and expected calibration error on synthetic predictions with a known answer."""

import numpy as np
import pytest

from cnn_model.calibration import apply_temperature, expected_calibration_error, reliability_bins
from cnn_model.decision import DecisionPolicy
from cnn_model.training.calibration import fit_temperature, oof_temperature, val_temperature


def _overconfident(n=4000, classes=4, true_temperature=2.5, seed=0):
    """Labels drawn from softmax(z); the 'network' reports softmax(z * true_temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, size=(n, classes))
    honest = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(classes, p=row) for row in honest])
    stated = np.exp(logits * true_temperature)
    return stated / stated.sum(axis=1, keepdims=True), y


def test_the_fitted_temperature_undoes_a_known_overconfidence():
    p, y = _overconfident()
    temperature = fit_temperature(p, y)
    assert temperature == pytest.approx(2.5, rel=0.1)
    assert expected_calibration_error(p, y) > 0.1
    assert expected_calibration_error(apply_temperature(p, temperature), y) < 0.03


def test_temperature_never_changes_the_shown_label():
    p, _ = _overconfident(n=500)
    for temperature in (0.5, 1.0, 3.0):
        scaled = apply_temperature(p, temperature)
        assert np.array_equal(scaled.argmax(axis=1), p.argmax(axis=1))
        assert np.allclose(scaled.sum(axis=1), 1.0)


def test_a_perfectly_calibrated_model_has_ece_near_zero_and_bins_count_every_image():
    p = np.array([[0.8, 0.2]] * 10 + [[0.3, 0.7]] * 10)
    y = np.array([0] * 8 + [1] * 2 + [1] * 7 + [0] * 3)
    assert expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-9)
    bins = reliability_bins(p, y)
    assert sum(b["n"] for b in bins) == 20 and len(bins) == 10
    assert [b for b in bins if b["n"]] == [
        {"low": 0.6, "high": 0.7, "n": 10, "weight": 0.5, "confidence": 0.7, "accuracy": 0.7},
        {"low": 0.7, "high": 0.8, "n": 10, "weight": 0.5, "confidence": 0.8, "accuracy": 0.8},
    ]


def test_oof_temperature_reports_before_after_and_cross_fitted():
    p, y = _overconfident(n=2500)
    folds = [{"probabilities": p[k::5], "y_true": y[k::5]} for k in range(5)]
    result = oof_temperature(folds)
    assert len(result["fold_temperatures"]) == 5 and result["n"] == 2500
    assert result["ece_after"] < 0.03 and result["ece_cross_fitted"] < 0.04 < result["ece_before"]
    assert result["nll_after"] < result["nll_before"]


def test_the_served_probabilities_are_calibrated_before_the_prevalence_correction():
    p = np.array([[0.9, 0.1]])
    policy = DecisionPolicy(class_weights=np.array([1.0, 0.5]), temperature=2.0)
    calibrated = apply_temperature(p, 2.0)
    weighted = calibrated * [1.0, 0.5]
    assert np.allclose(policy.adjust(p), weighted / weighted.sum())


def test_val_temperature_is_fitted_on_all_of_val_and_cross_fitted_over_halves_of_its_groups():
    p, y = _overconfident(n=1200, seed=4)
    groups = [f"smear{k // 3}" for k in range(len(y))]  # three images per group
    result = val_temperature(p, y, groups)
    assert result["temperature"] == fit_temperature(p, y)
    assert len(result["fold_temperatures"]) == 2 and all(t > 1.5 for t in result["fold_temperatures"])
    assert result["ece_after"] < 0.03 and result["ece_cross_fitted"] < 0.04 < result["ece_before"]


def test_weighting_an_image_counts_it_as_that_many_copies():
    p, y = _overconfident(n=300, seed=5)
    weights = np.where(y == 0, 3.0, 1.0)
    copies = np.concatenate([np.arange(len(y))] + [np.flatnonzero(y == 0)] * 2)
    assert expected_calibration_error(p, y, weights=weights) == pytest.approx(
        expected_calibration_error(p[copies], y[copies]), abs=2e-4
    )
