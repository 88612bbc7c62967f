"""A tiny training run, end to end: data folder -> training -> LiteRT export -> card -> runtime."""

import json
from dataclasses import replace

import numpy as np
import pytest

from cnn_model.modalities import SPECS
from cnn_model.runtime import ModelRunner
from cnn_model.specs import TrainingRecipe
from cnn_model.training.pipeline import train_modality
from tests.cnn_model.conftest import IMAGES_PER_CLASS, train_tiny_breast
from tests.support.images import sample_image

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def test_tiny_training_run_exports_a_model_the_runtime_serves(tiny_breast_dataset, tmp_path):
    artifacts = train_tiny_breast(tiny_breast_dataset, tmp_path)

    card = json.loads((artifacts / "breast" / "card.json").read_text())
    assert card["input"]["size"] == 32
    assert card["training"]["backbone"] == "compact CNN from scratch"
    assert card["metrics"]["val"]["n"] == 2 * len(SPECS["breast"].classes)
    assert (tmp_path / "runs" / "breast" / "training_log.csv").read_text().startswith("stage,epoch")
    runner = ModelRunner(artifacts / "breast")
    prediction = runner.predict(sample_image("breast"), heatmap=True)
    assert prediction.label in SPECS["breast"].class_names
    assert prediction.activation_map.render(sample_image("breast")).startswith(b"\x89PNG")


def test_a_run_trained_with_an_input_mask_is_served_with_the_same_mask(tiny_breast_dataset, tmp_path):
    mask = (0.25, 0.0, 0.125, 0.125)
    artifacts = train_tiny_breast(tiny_breast_dataset, tmp_path, input_mask=mask)

    card = json.loads((artifacts / "breast" / "card.json").read_text())
    assert card["input"]["mask"] == list(mask) and "margins" in card["preprocessing"]
    assert ModelRunner(artifacts / "breast").spec.input_mask == mask
    assert SPECS["breast"].input_mask is None  # an experiment's knob: the spec is untouched


def test_a_refit_recipe_learns_from_all_of_train_and_reports_val_only(tiny_breast_dataset, tmp_path):
    refit = TrainingRecipe(
        version="0.0.1",
        head_epochs=0,
        finetune_epochs=2,
        patience=1,
        refit_all_train=True,
        recipe_check="checked before",
        cv_candidate="baseline",  # the breast folds' OOF predictions set the flag's threshold (threshold_source)
    )
    with SPECS.registered(replace(SPECS["breast"], recipe=refit)):  # stands in for the shipped recipe
        train_modality(
            "breast",
            data_root=tiny_breast_dataset,
            backbone=None,
            run_dir=tmp_path / "runs",
            artifacts_dir=tmp_path / "artifacts",
            input_size=32,
            export_options={"bootstrap_rounds": 10, "min_agreement": 0.0},
        )
    card = json.loads((tmp_path / "artifacts" / "breast" / "card.json").read_text())
    assert card["version"] == "0.0.1"
    counts = card["training"]["data"]["counts"]
    assert sum(counts["fit"].values()) == IMAGES_PER_CLASS["train"] * len(SPECS["breast"].classes)
    assert not any(counts["test_slice"].values())
    assert set(card["metrics"]) == {"val"}  # the slice is training data now, so it is not reported
    assert "all of train/" in card["training"]["data"]["split_rule"]
    assert card["training"]["recipe_check"] == "checked before"
    assert card["decision"]["threshold_source"] == "cv_oof" == SPECS["breast"].threshold_source
    assert card["cross_validation"]["source"] == "model_runs/breast/baseline"
    assert card["cross_validation"]["flag_at_oof_threshold"]["threshold"] == card["decision"]["positive_threshold"]
    # No early stop and no choice on val: both epochs ran and the last one is kept.
    log_rows = (tmp_path / "runs" / "breast" / "training_log.csv").read_text().strip().splitlines()[1:]
    assert len(log_rows) == 2 and card["training"]["best_epoch"] == "finetune:2"


def test_an_untrained_classifier_starts_from_uniform_probabilities():
    # A random head on pooled features with norms near 40 starts with logits in the tens and
    # thrashes through its warm-up epochs; the zero-initialised head starts at chance instead.
    from cnn_model.training.fit import TrainingConfig, build_classifier  # imports TensorFlow

    spec = SPECS["cervical_cytology"]
    classifier, _ = build_classifier(spec, TrainingConfig(input_size=32))
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(classifier.predict(images, verbose=0), 1 / len(spec.classes), rtol=1e-6)


def test_a_distilled_recipe_trains_on_the_committed_soft_targets(tiny_breast_dataset, tmp_path, monkeypatch):
    from cnn_model.data import list_class_folder
    from cnn_model.training import distill
    from cnn_model.training.crossval.folds import relative_path

    spec = SPECS["breast"]
    train_samples = list_class_folder(tiny_breast_dataset / "breast" / "train", spec)
    cv_dir = tmp_path / "cv"
    distill.soft_targets_path("breast", "toy", cv_dir).parent.mkdir(parents=True)
    np.savez_compressed(
        distill.soft_targets_path("breast", "toy", cv_dir),
        paths=np.array([relative_path(s) for s in train_samples[1:]]),  # one image has no target
        y_true=np.zeros(len(train_samples) - 1),
        targets=np.full((len(train_samples) - 1, 3), 1 / 3, dtype=np.float16),
        class_names=np.array(spec.class_names),
    )
    monkeypatch.setattr(distill, "CV_DIR", cv_dir)
    student = TrainingRecipe(
        version="0.0.2", head_epochs=0, finetune_epochs=1, refit_all_train=True, distilled_from="toy"
    )
    options = {"data_root": tiny_breast_dataset, "backbone": None, "artifacts_dir": tmp_path / "artifacts"}
    options |= {"input_size": 32, "export_options": {"bootstrap_rounds": 10, "min_agreement": 0.0}}
    with SPECS.registered(replace(spec, recipe=student, threshold_source="val", calibration_source=None)):
        with pytest.raises(ValueError, match="no soft targets for 1 images"):
            train_modality("breast", run_dir=tmp_path / "runs", **options)
        np.savez_compressed(
            distill.soft_targets_path("breast", "toy", cv_dir),
            paths=np.array([relative_path(s) for s in train_samples]),
            y_true=np.zeros(len(train_samples)),
            targets=np.full((len(train_samples), 3), 1 / 3, dtype=np.float16),
            class_names=np.array(spec.class_names),
        )
        train_modality("breast", run_dir=tmp_path / "runs", **options)
    card = json.loads((tmp_path / "artifacts" / "breast" / "card.json").read_text())
    assert card["training"]["distilled_from"] == "toy" and card["version"] == "0.0.2"


def test_training_on_soft_targets_learns_them_rather_than_the_labels(tiny_breast_dataset, tmp_path):
    from cnn_model.data import list_class_folder, load_arrays
    from cnn_model.training.fit import TrainingConfig, train

    spec = replace(SPECS["breast"], augmentation={}, input_size=32)
    samples = list_class_folder(tiny_breast_dataset / "breast" / "train", spec)
    x, y = load_arrays(samples, spec, list(spec.class_names))
    contrary = np.roll(np.eye(3), 1, axis=1)[y] * 0.9 + 0.1 / 3  # every label's target is the next class
    config = TrainingConfig(
        head_epochs=0, finetune_epochs=40, finetune_learning_rate=3e-3, select_on_val=False, batch_size=6
    )
    result = train(spec, samples, samples[:3], config, tmp_path / "run", fit_targets=contrary)
    predicted = result["model"].predict(x.astype(np.float32), verbose=0).argmax(axis=1)
    # Chance is 1/3 either way; a model that learnt the labels would rarely say the next class.
    assert np.mean(predicted == (y + 1) % 3) > 0.5 > np.mean(predicted == y)


def test_a_logit_adjusted_loss_is_cross_entropy_after_shifting_by_the_log_prior():
    from cnn_model.training.fit import _logit_adjusted_loss

    labels = np.array([0, 0, 0, 1])  # prior 0.75 / 0.25
    probabilities = np.array([[0.6, 0.4], [0.2, 0.8]], dtype=np.float32)
    loss = _logit_adjusted_loss(labels, 2, tau=1.0)(np.array([0, 1]), probabilities).numpy()
    shifted = probabilities * np.array([0.75, 0.25])
    shifted /= shifted.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss, -np.log([shifted[0, 0], shifted[1, 1]]), rtol=1e-5)


def test_a_soft_logit_adjusted_loss_moves_the_targets_to_the_training_prior_first():
    from cnn_model.training.fit import _logit_adjusted_loss

    labels = np.array([0, 0, 0, 1])  # prior 0.75 / 0.25
    probabilities = np.array([[0.6, 0.4], [0.2, 0.8]], dtype=np.float32)
    balanced_targets = np.array([[0.5, 0.5], [0.1, 0.9]], dtype=np.float32)
    loss = _logit_adjusted_loss(labels, 2, tau=1.0, soft=True)(balanced_targets, probabilities).numpy()
    prior = np.array([0.75, 0.25])
    moved = balanced_targets * prior / (balanced_targets * prior).sum(axis=1, keepdims=True)
    shifted = probabilities * prior / (probabilities * prior).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss, -(moved * np.log(shifted)).sum(axis=1), rtol=1e-5)
    # A student whose output equals its teachers' balanced posterior is at the loss's minimum.
    at_targets = _logit_adjusted_loss(labels, 2, tau=1.0, soft=True)(balanced_targets, balanced_targets).numpy()
    assert np.all(at_targets <= loss + 1e-6)
    np.testing.assert_allclose(at_targets, -(moved * np.log(moved)).sum(axis=1), rtol=1e-5)


def test_logit_adjusted_training_records_its_prior_equivalent_class_weights(tiny_breast_dataset, tmp_path):
    from cnn_model.data import list_class_folder
    from cnn_model.training.fit import TrainingConfig, class_weights, train

    spec = replace(SPECS["breast"], input_size=32)
    samples = list_class_folder(tiny_breast_dataset / "breast" / "train", spec)[:-3]  # unequal classes
    config = TrainingConfig(head_epochs=0, finetune_epochs=1, logit_adjustment=1.0, select_on_val=False)
    result = train(spec, samples, samples[:3], config, tmp_path / "run")
    y = np.array([spec.class_names.index(s.label) for s in samples])
    expected = class_weights(y, 3, power=1.0)
    assert result["class_weights"] == {spec.class_names[k]: round(w, 4) for k, w in expected.items()}
    assert len(set(result["class_weights"].values())) > 1


def test_a_logit_adjusted_student_learns_its_teachers_balanced_posterior(tiny_breast_dataset, tmp_path):
    from cnn_model.data import list_class_folder, load_arrays
    from cnn_model.training.fit import TrainingConfig, train

    spec = replace(SPECS["breast"], augmentation={}, input_size=32)
    samples = list_class_folder(tiny_breast_dataset / "breast" / "train", spec)
    last = spec.class_names[-1]
    samples = [s for s in samples if s.label != last] + [s for s in samples if s.label == last][:2]
    x, y = load_arrays(samples, spec, list(spec.class_names))
    uniform = np.full((len(samples), 3), 1 / 3, dtype=np.float32)  # teachers that cannot tell the classes apart
    config = TrainingConfig(
        head_epochs=0,
        finetune_epochs=40,
        finetune_learning_rate=3e-3,
        select_on_val=False,
        batch_size=6,
        logit_adjustment=1.0,
    )
    result = train(spec, samples, samples[:3], config, tmp_path / "run", fit_targets=uniform)
    mean_output = result["model"].predict(x.astype(np.float32), verbose=0).mean(axis=0)
    # The balanced posterior of "no idea" is uniform. A student that skipped moving the targets would lean
    # to the rare class (about 0.6 on it), one that skipped the logit shift to the training mix (0.14).
    assert np.bincount(y).tolist() == [6, 6, 2]
    np.testing.assert_allclose(mean_output, 1 / 3, atol=0.05)
