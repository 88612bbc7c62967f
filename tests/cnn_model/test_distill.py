"""Soft targets from the fold models' teacher files: calibrated, averaged, and read back per image."""

import json
from pathlib import Path

import numpy as np
import pytest

from cnn_model.calibration import apply_temperature
from cnn_model.data import Sample
from cnn_model.modalities import SPECS
from cnn_model.training import distill
from cnn_model.training.calibration import fit_temperature
from cnn_model.training.crossval.folds import N_FOLDS, fold_stem, teacher_path

MODALITY, CANDIDATE = "breast", "toy"
CLASSES = SPECS[MODALITY].class_names
VIEWS = ["identity", "horizontal"]


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def cv_dir(tmp_path):
    """Five folds of 40 images: teacher files for every image and view, OOF files for the held-out rows."""
    rng = np.random.default_rng(3)
    n = 200
    paths = np.array([f"train/{CLASSES[k % 3]}/img_{k}.png" for k in range(n)])
    y = np.array([k % 3 for k in range(n)], dtype=np.int16)
    folds = np.array([k % N_FOLDS for k in range(n)], dtype=np.int8)
    for fold in range(N_FOLDS):
        logits = rng.normal(0, 3, (n, len(VIEWS), 3)) + 4.0 * np.eye(3)[y][:, None, :]  # overconfident
        probabilities = _softmax(logits)
        teacher_path(MODALITY, CANDIDATE, fold, tmp_path).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            teacher_path(MODALITY, CANDIDATE, fold, tmp_path),
            paths=paths,
            folds=folds,
            y_true=y,
            views=np.array(VIEWS),
            probabilities=probabilities.astype(np.float16),
            class_names=np.array(CLASSES),
        )
        held = folds == fold
        stem = fold_stem(MODALITY, CANDIDATE, fold, tmp_path)
        np.savez_compressed(
            stem.with_suffix(".npz"),
            paths=paths[held],
            groups=paths[held],
            y_true=y[held],
            probabilities=probabilities[held, 0].astype(np.float16).astype(np.float32),
            class_names=np.array(CLASSES),
        )
        stem.with_suffix(".json").write_text(json.dumps({"prevalence_weights": None}))
    return tmp_path


def test_soft_targets_average_the_calibrated_teachers_over_folds_and_views(cv_dir):
    built = distill.build_soft_targets(MODALITY, CANDIDATE, cv_dir)
    teachers = [np.load(teacher_path(MODALITY, CANDIDATE, f, cv_dir)) for f in range(N_FOLDS)]
    oof = [np.load(fold_stem(MODALITY, CANDIDATE, f, cv_dir).with_suffix(".npz")) for f in range(N_FOLDS)]
    temperature = fit_temperature(
        np.concatenate([o["probabilities"] for o in oof]).astype(np.float64),
        np.concatenate([o["y_true"] for o in oof]).astype(int),
    )
    assert built["temperature"] == temperature > 1.0  # the toy teachers are overconfident
    expected = np.mean(
        [apply_temperature(t["probabilities"].astype(np.float64), temperature) for t in teachers], axis=(0, 2)
    )
    np.testing.assert_allclose(built["targets"], expected, rtol=1e-6)
    assert built["teacher_oof"]["single_view"]["n"] == 200
    assert built["calibration"]["ece_after"] < built["calibration"]["ece_before"]


def test_teacher_oof_figures_use_only_the_fold_model_that_never_saw_the_image(cv_dir):
    # Make every teacher wrong on the images it trained on: the OOF figures must not notice.
    for fold in range(N_FOLDS):
        path = teacher_path(MODALITY, CANDIDATE, fold, cv_dir)
        with np.load(path) as data:
            content = {key: data[key] for key in data.files}
        trained_on = content["folds"] != fold
        wrong = np.roll(np.eye(3)[content["y_true"]], 1, axis=1)
        content["probabilities"][trained_on] = (0.98 * wrong[trained_on][:, None, :] + 0.01).astype(np.float16)
        np.savez_compressed(path, **content)
    built = distill.build_soft_targets(MODALITY, CANDIDATE, cv_dir)
    oof = [np.load(fold_stem(MODALITY, CANDIDATE, f, cv_dir).with_suffix(".npz")) for f in range(N_FOLDS)]
    oof_accuracy = np.mean(np.concatenate([o["probabilities"].argmax(axis=1) == o["y_true"] for o in oof]))
    assert oof_accuracy > 0.6
    assert built["teacher_oof"]["single_view"]["accuracy"] == pytest.approx(oof_accuracy, abs=1e-4)
    assert built["targets_vs_labels"]["accuracy"] < 0.1  # the trained-on teachers outvote the honest one


def test_written_targets_are_read_back_in_the_samples_order_and_refuse_unknown_images(cv_dir):
    summary = distill.write_soft_targets(MODALITY, CANDIDATE, cv_dir)
    assert summary["teachers"] == N_FOLDS and summary["views"] == VIEWS
    saved = json.loads(distill.soft_targets_path(MODALITY, CANDIDATE, cv_dir).with_suffix(".json").read_text())
    assert saved["temperature"] == summary["temperature"]
    samples = [
        Sample(Path("/data/breast/train") / CLASSES[k % 3] / f"img_{k}.png", CLASSES[k % 3], str(k)) for k in (7, 2)
    ]
    targets = distill.load_soft_targets(MODALITY, CANDIDATE, samples, cv_dir)
    full = distill.build_soft_targets(MODALITY, CANDIDATE, cv_dir)["targets"]
    np.testing.assert_allclose(targets, full[[7, 2]] / full[[7, 2]].sum(axis=1, keepdims=True), atol=2e-3)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    stranger = Sample(Path("/data/breast/val/benign/new.png"), "benign", "x")
    with pytest.raises(ValueError, match="no soft targets for 1 images"):
        distill.load_soft_targets(MODALITY, CANDIDATE, [stranger], cv_dir)


def test_target_fit_compares_a_student_with_its_targets_class_by_class():
    y = np.array([0, 0, 1, 1, 2])
    targets = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    # A student that learnt class 0 only half as surely and calls one of its images class 1.
    student = np.array([[0.4, 0.5, 0.1], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    fit = distill.target_fit(targets, student, y, CLASSES)
    first, second = fit["per_class"][CLASSES[0]], fit["per_class"][CLASSES[1]]
    assert fit["n"] == 5 and fit["top1_agreement_with_targets"] == 0.8
    assert (first["target_p_true"], first["student_p_true"]) == (0.7, 0.45)
    assert (first["target_recall"], first["student_recall"]) == (1.0, 0.5)
    assert second == {
        "n": 2,
        "target_p_true": 0.75,
        "student_p_true": 0.75,
        "target_recall": 1.0,
        "student_recall": 1.0,
    }
