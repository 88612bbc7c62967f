"""Skin's prevalence power with a margin on accuracy at HAM10000's mix, recomputed from the committed OOF files.

The figures are those the CHANGELOG gives for the 1.2.2 rule that was tried and not shipped: no power keeps
the accuracy target at a lower confidence bound without taking balanced accuracy under its own target.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from cnn_model.calibration import apply_temperature
from cnn_model.modalities import SPECS
from cnn_model.runtime import ARTIFACTS_DIR
from cnn_model.training.crossval.summary import load_candidate
from cnn_model.training.rules import grouped_bootstrap_recalls, prevalence_power_margin

MODALITY = "skin_lesion"


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((ARTIFACTS_DIR / MODALITY / "card.json").read_text())


@pytest.fixture(scope="module")
def margin(card) -> dict:
    spec = SPECS[MODALITY]
    folds = load_candidate(MODALITY, spec.recipe.cv_candidate)
    temperature = card["decision"]["temperature"]
    calibrated = [{**f, "probabilities": apply_temperature(f["probabilities"], temperature)} for f in folds]
    return prevalence_power_margin(
        spec, calibrated, spec.targets.accuracy, spec.targets.balanced_accuracy, f"model_runs/{MODALITY}/baseline"
    )


def _row(margin: dict, alpha: float) -> dict:
    return next(row for row in margin["table"] if row["alpha"] == alpha)


def test_no_power_keeps_both_targets_with_the_margin_so_the_card_keeps_its_rule(margin, card):
    assert margin["alpha"] is None
    assert card["decision"]["prevalence_power"] == 0.4  # the rule of 1.2.0, rescored, kept
    for row in margin["table"]:
        assert not (row["accuracy_at_prevalence_bound"] >= 0.80 and row["balanced_accuracy"] >= 0.65)


def test_the_served_power_misses_the_accuracy_target_at_its_bound(margin, card):
    served = _row(margin, card["decision"]["prevalence_power"])
    assert (
        served["accuracy_at_prevalence"]
        == card["decision"]["prevalence_power_evidence"]["at_alpha"]["accuracy_at_prevalence"]
    )
    assert served["accuracy_at_prevalence"] == pytest.approx(0.8058, abs=1e-4)
    assert served["accuracy_at_prevalence_bound"] == pytest.approx(0.7935, abs=0.002)
    assert served["accuracy_at_prevalence_bound"] < 0.80
    assert served["positive_threshold"] == card["decision"]["positive_threshold"]


def test_the_bound_reaches_the_target_only_where_balanced_accuracy_and_melanoma_recall_fall(margin):
    reaching = [row for row in margin["table"] if row["accuracy_at_prevalence_bound"] >= 0.80]
    assert reaching and min(row["alpha"] for row in reaching) >= 0.6
    served = _row(margin, 0.4)
    for row in reaching:
        assert row["balanced_accuracy"] <= 0.641
        assert row["recall"]["mel"] < served["recall"]["mel"] - 0.05
        assert row["flag_cross_fitted"]["specificity"] < served["flag_cross_fitted"]["specificity"]
    first = _row(margin, 0.6)
    assert first["accuracy_at_prevalence"] == pytest.approx(0.8120, abs=1e-4)
    assert first["balanced_accuracy"] == pytest.approx(0.6409, abs=1e-4)
    assert first["flag_cross_fitted"]["specificity"] == pytest.approx(0.7241, abs=1e-4)


def test_the_flag_keeps_its_floor_with_its_margin_at_every_power(margin):
    """The threshold is set again under each correction: sensitivity is never what accuracy is bought with."""
    for row in margin["table"]:
        assert row["flag_margin_met"] and row["flag_cross_fitted"]["sensitivity_lower_bound"] >= 0.85


def test_the_grouped_bootstrap_draws_whole_groups():
    """Two groups of two images (one right, one wrong each way): a round holds 0, 2 or 4 copies of each image pair."""
    y = np.array([0, 0, 1, 1])
    predicted = np.array([0, 0, 1, 0])
    groups = np.array(["a", "a", "b", "b"])
    recalls = grouped_bootstrap_recalls(y, predicted, groups, 2, rounds=200, seed=3)
    assert set(np.unique(recalls[:, 0][~np.isnan(recalls[:, 0])])) <= {1.0}
    assert set(np.unique(recalls[:, 1][~np.isnan(recalls[:, 1])])) <= {0.5}
    assert np.isnan(recalls).any(axis=0).all()  # some rounds draw only one of the two groups


def test_load_candidate_keeps_each_image_group():
    folds = load_candidate(MODALITY, "baseline")
    groups = np.concatenate([f["groups"] for f in folds])
    assert len(groups) == 3886 and len(np.unique(groups)) == 2680
    assert Path(folds[0]["paths"][0]).suffix == ".jpg"
