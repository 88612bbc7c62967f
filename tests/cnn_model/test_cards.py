"""What the shipped cards say about their decision rule and their cross-validation, checked against the files."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cnn_model.calibration import apply_temperature, expected_calibration_error
from cnn_model.modalities import MODALITIES, SPECS
from cnn_model.runtime import ARTIFACTS_DIR
from cnn_model.training.calibration import fit_temperature

REPO = Path(__file__).resolve().parents[2]


def _card(modality: str) -> dict:
    return json.loads((ARTIFACTS_DIR / modality / "card.json").read_text())


def _cv_oof_modalities() -> list[str]:
    return [m for m in MODALITIES if (_card(m).get("decision") or {}).get("threshold_source") == "cv_oof"]


@pytest.mark.parametrize("modality", MODALITIES)
def test_the_card_takes_its_threshold_from_where_the_spec_says(modality):
    spec, decision = SPECS[modality], _card(modality).get("decision") or {}
    if spec.sensitivity_target is None:
        assert "positive_threshold" not in decision
    elif spec.threshold_source == "cv_oof":
        assert decision["threshold_source"] == "cv_oof"
        assert spec.sensitivity_target == spec.cross_validation.sensitivity_floor  # `crossval summary` reports at it
        assert decision["threshold_evidence"]["source"] == f"model_runs/{modality}/{spec.recipe.cv_candidate}"
    else:
        assert decision.get("threshold_source", "val") == "val" and "on val" in decision["positive_threshold_rule"]


@pytest.mark.parametrize("modality", _cv_oof_modalities())
def test_a_cv_oof_threshold_is_what_the_committed_oof_predictions_give(modality):
    """Recomputed from the fold npz files alone: the highest threshold keeping the sensitivity target, pooled."""
    spec, card = SPECS[modality], _card(modality)
    decision = card["decision"]
    folder = REPO / decision["threshold_evidence"]["source"]
    positive = [spec.class_names.index(name) for name in spec.positive_classes]
    # Set on OOF probabilities served as the card serves: calibrated where it calibrates, and with each fold's
    # own prevalence correction raised to the card's power where it corrects.
    temperature = card.get("calibration", {}).get("oof", {}).get("temperature", 1.0)
    alpha = decision.get("prevalence_power", 1.0)
    scores, truth = [], []
    for path in sorted(folder.glob("fold[0-9].npz")):
        with np.load(path) as fold:
            assert list(fold["class_names"]) == list(spec.class_names)
            probabilities = apply_temperature(fold["probabilities"].astype(np.float64), temperature)
            weights = json.loads(path.with_suffix(".json").read_text()).get("prevalence_weights")
            if weights:
                probabilities = probabilities * np.array([weights[n] for n in spec.class_names]) ** alpha
                probabilities /= probabilities.sum(axis=1, keepdims=True)
            scores.append(probabilities[:, positive].sum(axis=1))
            truth.append(np.isin(fold["y_true"], positive))
    assert len(scores) == decision["threshold_evidence"]["folds"] == 5
    scores, truth = np.concatenate(scores), np.concatenate(truth)
    assert (
        len(scores) == decision["threshold_evidence"]["n"]
        and truth.sum() == decision["threshold_evidence"]["positives"]
    )

    # The threshold aims above the floor by the card's margin (sensitivity_aim; see the next test).
    aim = decision["threshold_evidence"]["sensitivity_aim"]
    assert aim >= spec.sensitivity_target
    caught = np.sort(scores[truth])
    misses = math.floor((1 - aim) * len(caught) + 1e-9)
    expected = math.floor(caught[misses] * 1e4) / 1e4
    threshold = decision["positive_threshold"]
    assert threshold == expected
    sensitivity = np.mean(scores[truth] >= threshold)
    assert sensitivity >= aim > np.mean(scores[truth] >= caught[misses] + 1e-6)
    oof = decision["threshold_evidence"]["oof"]
    assert oof["sensitivity"] == pytest.approx(sensitivity, abs=1e-4)
    assert oof["specificity"] == pytest.approx(np.mean(scores[~truth] < threshold), abs=1e-4)
    assert card["cross_validation"]["flag_at_oof_threshold"]["threshold"] == threshold


@pytest.mark.parametrize("modality", [m for m in MODALITIES if SPECS[m].recipe.cv_candidate])
def test_a_cross_validated_recipe_card_carries_its_cv_figures(modality):
    spec, card = SPECS[modality], _card(modality)
    if card["version"] != spec.recipe.version:
        pytest.skip("the shipped file predates the cross-validated recipe")
    cv = card["cross_validation"]
    assert cv["source"] == f"model_runs/{modality}/{spec.recipe.cv_candidate}"
    assert set(cv["per_fold"]) == {"0", "1", "2", "3", "4"}
    for key in ("accuracy", "balanced_accuracy", "macro_auc"):
        mean, sd = cv["mean_sd_over_folds"][key]
        assert mean == pytest.approx(np.mean([f[key] for f in cv["per_fold"].values()]), abs=1e-3) and sd > 0
    if spec.recipe.refit_all_train:  # trained after its folds (else the folds checked a recipe trained before)
        assert card["training"]["cv_candidate"] == spec.recipe.cv_candidate
        assert card["training"]["config"]["select_on_val"] is False  # the folds' epoch rule: full budget, last epoch
        assert set(card["metrics"]) == {"val"}  # refit on all of train/: val is the one untouched split
    for check in spec.held_out_checks:
        shown = next(c for c in card["held_out_checks"] if c["version"] == check["version"])
        assert shown["which"] == ("this version" if check["version"] == card["version"] else "previous version's check")


@pytest.mark.parametrize("modality", [m for m in MODALITIES if SPECS[m].calibration_source == "cv_oof"])
def test_a_calibrated_card_serves_the_temperature_its_oof_predictions_give(modality):
    """Refitted from the committed fold files alone, and calibrated out of fold to the 0.05 goal."""
    spec, card = SPECS[modality], _card(modality)
    folder = REPO / "model_runs" / modality / spec.recipe.cv_candidate
    folds = [np.load(path) for path in sorted(folder.glob("fold[0-9].npz"))]
    y = np.concatenate([f["y_true"] for f in folds]).astype(int)
    p = np.concatenate([f["probabilities"] for f in folds]).astype(np.float64)
    temperature = card["decision"]["temperature"]
    assert temperature == fit_temperature(p, y)
    evidence = card["decision"]["calibration_evidence"]
    assert evidence["ece_before"] == expected_calibration_error(p, y)
    assert evidence["ece_after"] == expected_calibration_error(apply_temperature(p, temperature), y) <= 0.05
    assert evidence["ece_cross_fitted"] <= 0.05
    assert card["calibration"]["oof"]["ece_after"] == evidence["ece_after"]
    assert (
        card["plots"]["reliability"] == "reliability.png" and (ARTIFACTS_DIR / modality / "reliability.png").is_file()
    )


@pytest.mark.parametrize("modality", [m for m in MODALITIES if SPECS[m].recipe.distilled_from])
def test_a_student_card_sets_its_teachers_on_val_beside_itself(modality):
    """The teachers' val figures come from the committed OOF files: each val image from the fold that held it out."""
    spec, card = SPECS[modality], _card(modality)
    distillation = card["distillation"]
    student, teachers = distillation["val_student"], distillation["val_teachers"]
    for key in ("n", "accuracy", "balanced_accuracy", "macro_auc"):
        assert student[key] == card["metrics"]["val"][key]
    folder = REPO / "model_runs" / modality / spec.recipe.distilled_from
    truth, predicted = [], []
    for path in sorted(folder.glob("fold[0-9].npz")):
        with np.load(path) as fold:
            on_val = np.char.startswith(fold["paths"].astype(str), "val/")
            truth.append(fold["y_true"][on_val])
            predicted.append(fold["probabilities"][on_val].argmax(axis=1))  # calibration keeps the argmax
    truth, predicted = np.concatenate(truth), np.concatenate(predicted)
    assert teachers["n"] == len(truth) == student["n"]
    assert teachers["accuracy"] == pytest.approx(np.mean(truth == predicted), abs=1e-4)


@pytest.mark.parametrize("modality", _cv_oof_modalities())
def test_a_cv_oof_threshold_keeps_its_floor_with_a_margin(modality):
    """The cross-fitted sensitivity's one-sided 95% lower bound reaches the floor; one step less aim does not."""
    from cnn_model.training.rules import MARGIN_STEP, wilson_lower_bound

    spec, evidence = SPECS[modality], _card(modality)["decision"]["threshold_evidence"]
    floor, cross_fitted = spec.sensitivity_target, evidence["cross_fitted"]
    caught = round(cross_fitted["sensitivity"] * evidence["positives"])
    assert cross_fitted["sensitivity_lower_bound"] == pytest.approx(
        wilson_lower_bound(caught, evidence["positives"]), abs=1e-4
    )
    assert cross_fitted["sensitivity_lower_bound"] >= floor
    before = evidence["without_margin"]
    assert before["threshold"] >= _card(modality)["decision"]["positive_threshold"]
    if evidence["sensitivity_aim"] > floor:
        assert before["cross_fitted"]["sensitivity_lower_bound"] < floor
        assert evidence["sensitivity_aim"] == pytest.approx(
            floor + MARGIN_STEP * round((evidence["sensitivity_aim"] - floor) / MARGIN_STEP)
        )


def test_the_wilson_bound_matches_a_worked_example():
    """95 of 100 (one-sided 95%, z = 1.6449): (0.95 + z^2/200 - z * sqrt(0.0475/100 + z^2/40000)) / (1 + z^2/100)."""
    from cnn_model.training.rules import wilson_lower_bound

    z = 1.6448536269514722
    expected = (0.95 + z * z / 200 - z * math.sqrt(0.95 * 0.05 / 100 + z * z / 40000)) / (1 + z * z / 100)
    assert wilson_lower_bound(95, 100) == pytest.approx(expected, abs=1e-9)
    assert wilson_lower_bound(95, 100) == pytest.approx(0.9008, abs=1e-4)
