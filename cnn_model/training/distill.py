"""One fast student from the cross-validation ensemble: soft targets, and what the teachers scored.

The five fold models of a candidate (cnn_model.training.crossval) each scored every labelled image in each
flip view (fold<K>.teacher.npz). Their soft targets for an image are the mean, over the five
models and the flip views, of their calibrated probabilities: the temperature is the one fitted
on the candidate's pooled out-of-fold predictions (cnn_model.calibration), so the student learns
confidence that was checked on images the teachers never saw. The targets are written once to
model_runs/<modality>/<candidate>/soft_targets.npz, committed, and read by
`python -m cnn_model train` for a recipe with distilled_from set, so a student can be trained
later on a machine that never held the fold models.

Four of the five teachers trained on each image, so the targets are surer of training images than
the ensemble would be of new ones; the student's own calibration is therefore measured on val.

    python -m cnn_model.training.distill targets --modality cervical_cytology --candidate short15
    python -m cnn_model.training.distill fit --modality skin_lesion --candidate logit_adjusted --artifact DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..calibration import apply_temperature, expected_calibration_error
from ..data import list_class_folder
from ..metrics import balanced_accuracy, macro_ovr_auc
from ..modalities import MODALITIES, get_spec
from ..preprocessing import preprocess_for_model
from ..runtime import ModelRunner
from .calibration import oof_temperature
from .crossval.folds import CV_DIR, DEFAULT_DATA_ROOT, N_FOLDS, relative_path, teacher_path
from .crossval.summary import load_candidate

SOFT_TARGETS_FILE = "soft_targets.npz"


def soft_targets_path(modality: str, candidate: str, cv_dir: Path = CV_DIR) -> Path:
    return Path(cv_dir) / modality / candidate / SOFT_TARGETS_FILE


def load_teachers(modality: str, candidate: str, cv_dir: Path = CV_DIR) -> list[dict]:
    """The five folds' teacher files, checked to describe the same images in the same order."""
    spec = get_spec(modality)
    teachers = []
    for fold in range(N_FOLDS):
        path = teacher_path(modality, candidate, fold, cv_dir)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: fold {fold} of {modality}/{candidate} has no teacher predictions")
        with np.load(path) as data:
            teachers.append({key: data[key] for key in data.files})
    first = teachers[0]
    for teacher in teachers[1:]:
        for key in ("paths", "folds", "y_true", "views"):
            if not np.array_equal(teacher[key], first[key]):
                raise ValueError(f"{modality}/{candidate}: teacher files disagree on {key}")
    if list(first["class_names"]) != list(spec.class_names):
        raise ValueError(f"{modality}/{candidate}: teacher classes differ from the spec")
    return teachers


def build_soft_targets(modality: str, candidate: str, cv_dir: Path = CV_DIR) -> dict:
    """Calibrated ensemble targets for every labelled image, and the teachers' out-of-fold figures."""
    teachers = load_teachers(modality, candidate, cv_dir)
    calibration = oof_temperature(load_candidate(modality, candidate, cv_dir))
    temperature = calibration["temperature"]
    # (folds, images, views, classes), calibrated per view before averaging.
    stacked = np.stack([apply_temperature(t["probabilities"].astype(np.float64), temperature) for t in teachers])
    targets = stacked.mean(axis=(0, 2))
    first = teachers[0]
    folds, y = first["folds"].astype(int), first["y_true"].astype(int)
    # Out of fold: each image scored only by the fold model that never trained on it.
    oof_views = np.stack([stacked[folds[i], i] for i in range(len(y))])  # (images, views, classes)
    return {
        "paths": first["paths"],
        "folds": folds,
        "y_true": y,
        "views": [str(v) for v in first["views"]],
        "targets": targets,
        "temperature": temperature,
        "calibration": calibration,
        "teacher_oof": {
            "single_view": figures(oof_views[:, 0], y),
            "flip_tta": figures(oof_views.mean(axis=1), y),
        },
        "targets_vs_labels": figures(targets, y),  # on images most teachers trained on: not a score
    }


def figures(probabilities: np.ndarray, y_true: np.ndarray) -> dict:
    predicted = probabilities.argmax(axis=1)
    n_classes = probabilities.shape[1]
    return {
        "n": int(len(y_true)),
        "accuracy": round(float(np.mean(predicted == y_true)), 4),
        "balanced_accuracy": round(balanced_accuracy(y_true, predicted, n_classes), 4),
        "macro_auc": round(float(macro_ovr_auc(y_true, probabilities)), 4),
        "expected_calibration_error": expected_calibration_error(probabilities, y_true),
    }


def write_soft_targets(modality: str, candidate: str, cv_dir: Path = CV_DIR) -> dict:
    built = build_soft_targets(modality, candidate, cv_dir)
    path = soft_targets_path(modality, candidate, cv_dir)
    np.savez_compressed(
        path,
        paths=built["paths"],
        y_true=built["y_true"].astype(np.int16),
        targets=built["targets"].astype(np.float16),
        class_names=np.array(get_spec(modality).class_names),
    )
    summary = {
        "modality": modality,
        "candidate": candidate,
        "teachers": N_FOLDS,
        "views": built["views"],
        "temperature": built["temperature"],
        "calibration": {k: v for k, v in built["calibration"].items() if not k.startswith("reliability")},
        "teacher_oof": built["teacher_oof"],
        "targets_vs_labels": built["targets_vs_labels"],
    }
    path.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def load_soft_targets(modality: str, candidate: str, samples, cv_dir: Path | None = None) -> np.ndarray:
    """The committed soft targets for these samples, in their order (every sample must have one)."""

    with np.load(soft_targets_path(modality, candidate, cv_dir or CV_DIR)) as data:
        if list(data["class_names"]) != list(get_spec(modality).class_names):
            raise ValueError(f"{modality}/{candidate}: soft-target classes differ from the spec")
        row = {str(path): k for k, path in enumerate(data["paths"])}
        targets = data["targets"].astype(np.float32)
    missing = [relative_path(s) for s in samples if relative_path(s) not in row]
    if missing:
        raise ValueError(f"{modality}/{candidate}: no soft targets for {len(missing)} images, e.g. {missing[:3]}")
    chosen = targets[[row[relative_path(s)] for s in samples]]
    return chosen / chosen.sum(axis=1, keepdims=True)  # float16 rounding


def target_fit(targets: np.ndarray, student: np.ndarray, y_true: np.ndarray, class_names) -> dict:
    """How closely a student reproduces its soft targets on the images it learnt them from.

    Per true class: the mean probability of that class under the targets and under the student, and
    how often each picks it. A student short of its targets on a class here is short of its teachers
    on new images too, and the teachers' thresholds then do not carry over to it.
    """
    per_class = {}
    for k, name in enumerate(class_names):
        rows = y_true == k
        if not rows.any():
            continue
        per_class[name] = {
            "n": int(rows.sum()),
            "target_p_true": round(float(targets[rows, k].mean()), 3),
            "student_p_true": round(float(student[rows, k].mean()), 3),
            "target_recall": round(float(np.mean(targets[rows].argmax(axis=1) == k)), 3),
            "student_recall": round(float(np.mean(student[rows].argmax(axis=1) == k)), 3),
        }
    return {
        "n": int(len(y_true)),
        "top1_agreement_with_targets": round(float(np.mean(student.argmax(axis=1) == targets.argmax(axis=1))), 4),
        "per_class": per_class,
    }


def student_fit(modality: str, candidate: str, artifact_dir: Path, data_root: Path = DEFAULT_DATA_ROOT) -> dict:
    """target_fit of an exported student on train/: its network's own probabilities (before the card's
    temperature and prevalence correction, as it was trained) against the committed soft targets."""
    runner = ModelRunner(artifact_dir)
    if runner.spec.name != modality:
        raise ValueError(f"{artifact_dir}: a {runner.spec.name} model, not {modality}")
    samples = list_class_folder(Path(data_root) / modality / "train", runner.spec)
    student, _ = runner.network_run(np.stack([preprocess_for_model(s.path, runner.spec) for s in samples]))
    y_true = np.array([runner.spec.class_names.index(s.label) for s in samples])
    targets = load_soft_targets(modality, candidate, samples)
    return {"modality": modality, "candidate": candidate, "version": runner.version} | target_fit(
        targets, student, y_true, runner.spec.class_names
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_model.training.distill", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    targets = commands.add_parser("targets", help="write cv/<modality>/<candidate>/soft_targets.npz (+ .json)")
    targets.add_argument("--modality", required=True, choices=MODALITIES)
    targets.add_argument("--candidate", required=True)
    targets.add_argument("--cv-dir", type=Path, default=CV_DIR)
    fit = commands.add_parser("fit", help="how closely an exported student reproduces its soft targets on train/")
    fit.add_argument("--modality", required=True, choices=MODALITIES)
    fit.add_argument("--candidate", required=True)
    fit.add_argument("--artifact", required=True, type=Path, help="the student's folder (card.json + model.tflite)")
    fit.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    args = parser.parse_args(argv)
    if args.command == "fit":
        print(json.dumps(student_fit(args.modality, args.candidate, args.artifact, args.data_root), indent=1))
    else:
        print(json.dumps(write_soft_targets(args.modality, args.candidate, args.cv_dir), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
