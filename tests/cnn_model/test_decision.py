import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from cnn_model.decision import DecisionPolicy
from cnn_model.metrics import accuracy_at_prevalence, classification_report
from cnn_model.modalities import SPECS
from cnn_model.runtime import ARTIFACTS_DIR, ModelRunner
from cnn_model.training.rules import (
    derive_decision,
    prevalence_power_choice,
    prevalence_weights,
    sensitivity_threshold,
)
from tests.support.images import sample_image

SKIN = SPECS["skin_lesion"]  # akiec, bcc, mel are malignant


def test_prevalence_weights_undo_the_training_mix():
    # Trained on equal effective counts, deployed where nv is ten times as common as the rest.
    fit = {name: 100 for name in SKIN.class_names}
    ones = {name: 1.0 for name in SKIN.class_names}
    skewed = {name: (10 if name == "nv" else 1) for name in SKIN.class_names}
    weights = prevalence_weights(replace(SKIN, prevalence=skewed), fit, ones)
    assert weights["nv"] == 1.0
    assert all(weights[name] == pytest.approx(0.1) for name in SKIN.class_names if name != "nv")


def test_no_prevalence_means_no_weights():
    plain = replace(SPECS["breast"], sensitivity_target=None)  # no prevalence and no threshold: the top-1 rule
    assert prevalence_weights(plain, {"benign": 1, "malignant": 1, "normal": 1}, {}) is None
    assert (
        derive_decision(plain, {"data": {"counts": {"fit": {}}}, "class_weights": {}}, np.eye(3), np.arange(3)) is None
    )


def _fold(scores, labels):
    """A breast fold with P(malignant) = score, the rest on benign."""
    scores = np.asarray(scores, dtype=np.float64)
    served = np.zeros((len(scores), 3))
    served[:, 1] = scores
    served[:, 0] = 1 - scores
    return {"y_true": np.asarray(labels), "served": served}


def test_a_cv_oof_threshold_is_set_on_the_pooled_folds_and_cross_fitted():
    spec = replace(SPECS["breast"], sensitivity_target=0.8, threshold_source="cv_oof")
    # Two folds of five malignant (label 1) and five benign (label 0) images each.
    folds = [
        _fold([0.9, 0.8, 0.7, 0.6, 0.3, 0.5, 0.2, 0.1, 0.1, 0.1], [1] * 5 + [0] * 5),
        _fold([0.95, 0.85, 0.75, 0.4, 0.2, 0.35, 0.1, 0.1, 0.1, 0.1], [1] * 5 + [0] * 5),
    ]
    decision = derive_decision(
        spec, {"data": {"counts": {"fit": {}}}, "class_weights": {}}, None, None, oof_folds=folds, oof_source="cv/x"
    )
    # Without the margin: pooled positives 0.2 0.3 0.4 0.6 ...: two of ten may be missed, so the third lowest.
    evidence = decision["threshold_evidence"]
    before = evidence["without_margin"]
    assert before["threshold"] == 0.4
    assert (evidence["n"], evidence["positives"], evidence["folds"]) == (20, 10, 2)
    assert before["oof"] == {"sensitivity": 0.8, "specificity": 0.9}  # 0.5 is the one benign flagged
    # Each fold at the other's threshold: fold 0 at 0.4 (fold 1 misses one of five), fold 1 at 0.6.
    assert before["cross_fitted"]["fold_thresholds"] == [0.4, 0.6]
    assert before["cross_fitted"]["sensitivity"] == 0.7 and before["cross_fitted"]["specificity"] == 0.9
    # With it: ten positives cannot show 0.8 at a 95% lower bound (10 of 10 gives 0.79), so the rule aims for
    # every positive, the lowest positive sets the threshold, and the card says the margin is not met.
    assert decision["positive_threshold"] == 0.2 and decision["threshold_source"] == "cv_oof"
    assert evidence["sensitivity_aim"] == 1.0 and evidence["margin_met"] is False
    assert evidence["oof"] == {"sensitivity": 1.0, "specificity": 0.7}
    with pytest.raises(ValueError, match="out-of-fold"):
        derive_decision(spec, {"data": {"counts": {"fit": {}}}, "class_weights": {}}, None, None)


def test_adjusted_probabilities_are_reweighted_and_renormalised():
    policy = DecisionPolicy(class_weights=np.array([1.0, 0.5]))
    adjusted = policy.adjust(np.array([[0.5, 0.5], [0.2, 0.8]]))
    np.testing.assert_allclose(adjusted, [[2 / 3, 1 / 3], [1 / 3, 2 / 3]])


def test_sensitivity_threshold_catches_the_target_share_of_positives():
    # 10 malignant (mel) images with P(malignant) 0.1..1.0 and benign ones below.
    scores = np.linspace(0.1, 1.0, 10)
    probabilities = np.zeros((15, 7))
    probabilities[:10, 4] = scores
    probabilities[:10, 5] = 1 - scores
    probabilities[10:, 5] = 1.0
    y = np.array([4] * 10 + [5] * 5)
    threshold = sensitivity_threshold(probabilities, y, SKIN, target=0.8)
    assert threshold == pytest.approx(0.3)
    flags = DecisionPolicy(positive_threshold=threshold).positive(probabilities, SKIN)
    assert flags[:10].mean() == 0.8 and not flags[10:].any()


def test_without_a_threshold_the_top1_class_decides():
    probabilities = np.array([[0.0, 0.0, 0.0, 0.0, 0.4, 0.6, 0.0], [0.0, 0.0, 0.0, 0.0, 0.6, 0.4, 0.0]])
    assert DecisionPolicy().positive(probabilities, SKIN).tolist() == [False, True]
    assert DecisionPolicy(positive_threshold=0.3).positive(probabilities, SKIN).tolist() == [True, True]


def test_accuracy_at_prevalence_weights_per_class_recall():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 0, 1, 0])  # recall 1.0 and 0.5
    assert accuracy_at_prevalence(y_true, y_pred, np.array([3.0, 1.0])) == pytest.approx(0.875)
    report = classification_report(
        y_true, np.eye(2)[y_pred], ["a", "b"], ["b"], bootstrap_rounds=20, prevalence={"a": 3, "b": 1}
    )
    assert report["accuracy_at_prevalence"] == pytest.approx(0.875)
    assert "accuracy_at_prevalence" in report["ci95"]


def test_the_card_threshold_drives_the_served_flag(tmp_path):
    def runner_with(threshold):
        folder = tmp_path / f"skin_{threshold}"
        shutil.copytree(ARTIFACTS_DIR / "skin_lesion", folder)
        card = json.loads((folder / "card.json").read_text())
        card.setdefault("decision", {})["positive_threshold"] = threshold
        (folder / "card.json").write_text(json.dumps(card))
        return ModelRunner(folder)

    image = sample_image("skin_lesion")
    assert runner_with(0.0).predict(image).is_positive is True
    assert runner_with(1.01).predict(image).is_positive is False


def test_the_partial_prevalence_correction_leaves_the_most_room_on_both_targets():
    """A common class and two rare ones: the full correction buys accuracy at the mix with rare-class recall."""
    spec = replace(SPECS["breast"], prevalence={"benign": 90, "malignant": 5, "normal": 5})
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 300)  # a rebalanced training-like set
    logits = rng.normal(0, 1.0, (len(y), 3)) + 1.2 * np.eye(3)[y]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    weights = np.array([1.0, 5 / 90, 5 / 90])  # deployment / training prior, max 1
    folds = [{"y_true": y[k::3], "probabilities": probabilities[k::3], "prevalence_weights": weights} for k in range(3)]
    choice = prevalence_power_choice(spec, folds, accuracy_target=0.85, balanced_target=0.55, source="toy")
    table = {row["alpha"]: row for row in choice["table"]}
    assert choice["no_correction"] == table[0.0] and choice["full_correction"] == table[1.0]
    assert table[1.0]["accuracy_at_prevalence"] > table[0.0]["accuracy_at_prevalence"]
    assert table[1.0]["balanced_accuracy"] < table[0.0]["balanced_accuracy"]
    alpha = choice["alpha"]
    assert 0 < alpha < 1
    assert table[alpha]["accuracy_at_prevalence"] >= 0.85 and table[alpha]["balanced_accuracy"] >= 0.55
    for row in choice["table"]:
        margin = min(row["accuracy_at_prevalence"] - 0.85, row["balanced_accuracy"] - 0.55)
        assert row["margin"] == pytest.approx(margin, abs=1e-4) and margin <= table[alpha]["margin"] + 1e-9
    # Targets out of reach together: still the nearest miss, not a silent extreme.
    missed = prevalence_power_choice(spec, folds, accuracy_target=0.999, balanced_target=0.999, source="toy")
    assert missed["at_alpha"]["margin"] < 0
