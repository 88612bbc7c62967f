import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from cnn_model.decision import DecisionPolicy, derive_decision, prevalence_weights, sensitivity_threshold
from cnn_model.metrics import accuracy_at_prevalence, classification_report
from cnn_model.runtime import ARTIFACTS_DIR, ModelRunner
from cnn_model.specs import SPECS
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
    assert prevalence_weights(SPECS["breast"], {"benign": 1, "malignant": 1, "normal": 1}, {}) is None
    assert (
        derive_decision(
            SPECS["breast"], {"data": {"counts": {"fit": {}}}, "class_weights": {}}, np.eye(3), np.arange(3)
        )
        is None
    )


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
