"""Prediction sets (cnn_model.conformal): the thresholds against crepes on the same data, and the shipped cards."""

import json
import math

import numpy as np
import pytest

from cnn_model.card import ModelCard
from cnn_model.conformal import CLEAR, UNCERTAIN, PredictionSets, certainty_of
from cnn_model.modalities import MODALITIES, SPECS
from cnn_model.runtime import ARTIFACTS_DIR
from cnn_model.training.conformal import class_thresholds, conformal_section
from cnn_model.training.scoring import cross_validation_folds, oof_decision_rules

COVERAGE_TOLERANCE = 0.02  # out-of-fold coverage within 2 points of nominal, overall and per class
MIN_CLASS_IMAGES = 30  # classes with fewer calibration images are not held to it


def _served_folds(modality: str) -> list[dict]:
    spec = SPECS[modality]
    folds, source = cross_validation_folds(spec)
    _, _, serving = oof_decision_rules(spec, folds, source)
    return cross_validation_folds(spec, **serving)[0] if serving else folds


def test_the_class_thresholds_agree_with_crepes_on_a_shipped_models_oof_predictions():
    """crepes' Mondrian conformal classifier (one category per class, non-smoothed p-values) on the same OOF data.

    A class is in our set exactly when its crepes p-value exceeds 1 - coverage: the ceil((n + 1) * coverage)-th
    smallest score as the threshold. crepes' own predict_set also keeps a class whose p-value equals 1 - coverage
    (possible when (n + 1) * (1 - coverage) is a whole number); that is the only difference allowed.
    """
    crepes = pytest.importorskip("crepes")
    folds = _served_folds("skin_lesion")
    calibration, test = folds[:4], folds[4]
    p = np.concatenate([f["served"] for f in calibration])
    y = np.concatenate([f["y_true"] for f in calibration])
    ours = PredictionSets(0.9, class_thresholds(p, y, 0.9)).members(test["served"])

    classifier = crepes.ConformalClassifier().fit(1.0 - p[np.arange(len(y)), y], bins=y)
    n_test, n_classes = test["served"].shape
    p_values = np.column_stack(
        [
            classifier.predict_p(1.0 - test["served"][:, [k]], bins=np.full(n_test, k), smoothing=False)[:, 0]
            for k in range(n_classes)
        ]
    )
    assert ours.sum() > n_test  # some sets hold more than one class
    np.testing.assert_array_equal(ours, p_values > 0.1 + 1e-9)
    theirs = np.column_stack(
        [
            classifier.predict_set(
                1.0 - test["served"][:, [k]], bins=np.full(n_test, k), confidence=0.9, smoothing=False
            )[:, 0]
            for k in range(n_classes)
        ]
    ).astype(bool)
    differ = ours != theirs
    assert np.all(theirs[differ]) and np.allclose(p_values[differ], 0.1)


def test_a_class_threshold_is_the_finite_sample_quantile_worked_by_hand():
    # Class 0: nine images with p 0.95 .. 0.55 (scores 0.05 .. 0.45); ceil(10 * 0.8) = 8th smallest score = 0.40.
    p0 = np.linspace(0.95, 0.55, 9)
    probabilities = np.column_stack([p0, 1 - p0])
    y = np.zeros(9, dtype=int)
    thresholds = class_thresholds(probabilities, y, 0.8)
    assert thresholds[0] == pytest.approx(0.40)
    assert thresholds[1] == 1.0  # no images of class 1: every image keeps it
    # At 0.95, ceil(10 * 0.95) = 10 > 9: no finite quantile, the class is always in the set.
    assert class_thresholds(probabilities, y, 0.95)[0] == 1.0
    assert math.ceil((9 + 1) * 0.8) == 8


def test_a_set_lists_its_classes_most_probable_first_and_an_empty_one_is_filled():
    sets = PredictionSets(0.9, np.array([0.6, 0.5, 0.1]))
    names = ("a", "b", "c")
    assert sets.prediction_set(np.array([0.45, 0.5, 0.05]), names) == ["b", "a"]  # 1 - p: 0.55, 0.5, 0.95
    assert sets.prediction_set(np.array([0.1, 0.1, 0.8]), names) == ["c", "a"]  # empty: the two most probable
    assert sets.prediction_set(np.array([0.05, 0.05, 0.9]), names) == ["c"]
    assert certainty_of(["c"]) == CLEAR and certainty_of(["c", "a"]) == UNCERTAIN


@pytest.mark.parametrize("modality", MODALITIES)
def test_every_shipped_card_carries_prediction_sets_that_keep_their_coverage(modality):
    spec = SPECS[modality]
    card = ModelCard.load(ARTIFACTS_DIR / modality / "card.json")
    conformal = card.conformal
    assert conformal is not None and conformal.coverage == spec.set_coverage
    assert list(conformal.thresholds) == list(spec.class_names)
    assert sum(conformal.calibration_counts.values()) == conformal.calibration_n
    for name in ("calibration_set", "cross_fitted"):
        report = conformal.report[name]["conformal_sets"]
        assert abs(report["coverage"] - conformal.coverage) <= COVERAGE_TOLERANCE, name
        for cls, coverage in report["coverage_by_class"].items():
            if conformal.calibration_counts[cls] * (0.8 if name == "cross_fitted" else 1) >= MIN_CLASS_IMAGES:
                # Cross-fitted per class: within the tolerance or within two binomial sds of it (n of 30 to 200).
                n = conformal.report[name]["coverage_by_class"][cls]["n"]
                slack = 2 * math.sqrt(conformal.coverage * (1 - conformal.coverage) / n)
                assert abs(coverage - conformal.coverage) <= max(COVERAGE_TOLERANCE, slack), (name, cls)
        # Served sets (an empty set filled) only ever cover more.
        assert conformal.report[name]["coverage"] >= report["coverage"]


@pytest.mark.parametrize("modality", [m for m in MODALITIES if not SPECS[m].recipe.distilled_from])
def test_the_card_thresholds_are_what_the_committed_oof_predictions_give(modality):
    """Refitted from model_runs/ alone (no model, no images): the card's thresholds, calibration set and figures."""
    spec = SPECS[modality]
    card = json.loads((ARTIFACTS_DIR / modality / "card.json").read_text())["conformal"]
    folds = _served_folds(modality)
    section = conformal_section(spec, folds, card["calibration_source"], card["calibration_choice"])
    assert section["thresholds"] == card["thresholds"]
    assert section["calibration_counts"] == card["calibration_counts"]
    assert section["report"]["calibration_set"] == card["report"]["calibration_set"]
    assert section["report"]["cross_fitted"] == card["report"]["cross_fitted"]


def test_a_card_loads_and_saves_byte_for_byte_with_its_conformal_section(tmp_path):
    for modality in MODALITIES:
        source = ARTIFACTS_DIR / modality / "card.json"
        ModelCard.load(source).save(tmp_path / "card.json")
        assert (tmp_path / "card.json").read_bytes() == source.read_bytes()
