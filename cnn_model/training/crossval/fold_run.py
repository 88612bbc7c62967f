"""One fold of one candidate: train on the other folds, keep the held-out fold's OOF predictions and the
fold model's teacher predictions for every labelled image."""

from __future__ import annotations

import csv
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ...data import Sample
from ...decision import DecisionPolicy
from ...metrics import classification_report
from ...modalities import get_spec
from ..rules import prevalence_weights
from .candidates import candidate_recipe, candidate_spec, candidates
from .folds import (
    CV_DIR,
    DEFAULT_BACKBONE,
    DEFAULT_DATA_ROOT,
    DEFAULT_RUNS_DIR,
    fold_stem,
    inner_split,
    labelled_samples,
    load_folds,
    portable,
    relative_path,
    teacher_path,
)


def set_threads(threads: int) -> None:
    """Limit TensorFlow's thread pools before any op runs (the machine is shared)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


@dataclass(frozen=True)
class FoldSplit:
    """The labelled images of one fold: every sample with its fold, the held-out fold and the rest."""

    samples: list[Sample]
    sample_folds: list[int]
    held: list[Sample]
    rest: list[Sample]


def split_fold(modality: str, fold: int, data_root: Path, cv_dir: Path) -> FoldSplit:
    samples = labelled_samples(modality, data_root)
    sample_folds = load_folds(modality, samples, cv_dir)
    held = [s for s, f in zip(samples, sample_folds, strict=True) if f == fold]
    rest = [s for s, f in zip(samples, sample_folds, strict=True) if f != fold]
    if not held:
        raise ValueError(f"fold {fold} is empty")
    return FoldSplit(samples, sample_folds, held, rest)


def fit_and_val(split: FoldSplit, epoch_rule: str, recipe: dict) -> tuple[list[Sample], list[Sample]]:
    """The images a fold trains on and the ones it logs (or, with "inner_val", chooses its epoch) on.

    Sets recipe's select_on_val, and its patience unless the candidate names one.
    """
    if epoch_rule == "fixed":
        fit, val = split.rest, split.held  # held-out fold: logged per epoch, never used to choose
        recipe["select_on_val"] = False
    elif epoch_rule == "inner_val":
        fit, val = inner_split(split.rest)
        recipe["select_on_val"] = True
    else:
        raise ValueError(f"unknown epoch_rule {epoch_rule!r}")
    recipe.setdefault("patience", 4 if len(fit) > 2000 else 6)
    return fit, val


def class_counts(samples: list[Sample], class_names: list[str]) -> dict[str, int]:
    return {name: sum(1 for s in samples if s.label == name) for name in class_names}


def score_held_out(spec, fit, result: dict, y_held: np.ndarray, probabilities: np.ndarray) -> tuple[dict, dict]:
    """(prevalence weights, metrics) of the held-out fold, its probabilities served as the card would."""
    class_names = list(spec.class_names)
    weights = prevalence_weights(spec, class_counts(fit, class_names), result["class_weights"])
    policy = DecisionPolicy(np.array([weights[n] for n in class_names]) if weights else None)
    report = classification_report(
        y_held,
        policy.adjust(probabilities),
        class_names,
        spec.positive_classes,
        bootstrap_rounds=0,
        prevalence=spec.prevalence,
    )
    return weights, report


def save_oof(stem: Path, held: list[Sample], y_held: np.ndarray, probabilities: np.ndarray, class_names) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        stem.with_suffix(".npz"),
        paths=np.array([relative_path(s) for s in held]),
        groups=np.array([s.group for s in held]),
        y_true=y_held.astype(np.int16),
        probabilities=probabilities.astype(np.float32),
        class_names=np.array(class_names),
    )


def fold_record(
    modality: str, candidate: str, fold: int, epoch_rule: str, result: dict, seconds: float, counts: dict, root: Path
) -> dict:
    """The fold's record (its .json) up to its scores: what ran, with which recipe, on how many images."""
    return {
        "modality": modality,
        "candidate": candidate,
        "fold": fold,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": portable(
            "python -m cnn_model.training.crossval " + " ".join(shlex.quote(a) for a in sys.argv[1:]), root
        ),
        "epoch_rule": epoch_rule,
        "recipe": dict(candidates(modality)[candidate]),
        "config": json.loads(portable(json.dumps(result["config"]), root)),
        "training_seconds": seconds,
        "kept_epoch": result["best_epoch"],
        "counts": counts,
        "class_weights": result["class_weights"],
    }


def train_fold(
    modality: str,
    candidate: str,
    fold: int,
    *,
    data_root: Path = DEFAULT_DATA_ROOT,
    backbone: Path | None = DEFAULT_BACKBONE,
    runs_dir: Path = DEFAULT_RUNS_DIR,
    cv_dir: Path = CV_DIR,
    recipe_overrides: dict | None = None,
) -> dict:
    """Train one fold of one candidate; write its OOF probabilities (.npz) and metrics (.json)."""
    from ...data import load_arrays
    from ..fit import TrainingConfig, train

    spec = get_spec(modality)
    class_names = list(spec.class_names)
    split = split_fold(modality, fold, data_root, cv_dir)
    recipe = candidate_recipe(modality, candidate)
    recipe.update(recipe_overrides or {})
    epoch_rule = recipe.pop("epoch_rule", "fixed")
    train_spec = candidate_spec(spec, recipe)
    fit, val = fit_and_val(split, epoch_rule, recipe)
    config = TrainingConfig(**recipe, backbone_path=str(backbone) if backbone else None)

    run_dir = Path(runs_dir) / modality / candidate / f"fold{fold}"
    print(
        f"{modality}/{candidate} fold {fold}: {len(fit)} fit / {len(val)} "
        f"{'held-out (logged only)' if epoch_rule == 'fixed' else 'inner val'} / {len(split.held)} held-out images; "
        f"epoch rule {epoch_rule}",
        flush=True,
    )
    started = time.time()
    result = train(train_spec, fit, val, config, run_dir)
    model = result["model"]
    model.save(run_dir / "model.keras")
    input_spec = replace(train_spec, input_size=config.input_size or spec.input_size)
    x_held, y_held = load_arrays(split.held, input_spec, class_names)
    probabilities = model.predict(x_held.astype(np.float32), batch_size=64, verbose=0).astype(np.float64)
    seconds = round(time.time() - started, 1)
    write_teacher_predictions(model, split.samples, split.sample_folds, train_spec, config, fold, cv_dir, candidate)

    weights, report = score_held_out(spec, fit, result, y_held, probabilities)
    stem = fold_stem(modality, candidate, fold, cv_dir)
    save_oof(stem, split.held, y_held, probabilities, class_names)
    root = Path(cv_dir).resolve().parent  # the checkout that holds model_runs/
    counts = {
        "fit": class_counts(fit, class_names),
        "inner_val": class_counts(val, class_names) if epoch_rule == "inner_val" else None,
        "held_out": class_counts(split.held, class_names),
    }
    payload = fold_record(modality, candidate, fold, epoch_rule, result, seconds, counts, root)
    payload.update(prevalence_weights=weights, metrics=report, epochs=_read_log(run_dir / "training_log.csv"))
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    print(
        f"{modality}/{candidate} fold {fold}: acc {report['accuracy']:.3f} bal {report['balanced_accuracy']:.3f} "
        f"auc {report['macro_auc']:.3f} in {seconds:.0f}s -> {portable(str(stem), root)}.npz/.json",
        flush=True,
    )
    return payload


def flip_views(flip: str | None) -> list[str]:
    """The views a fold model scores every image in: the flips its training augmentation allowed."""
    return {None: ["identity"], "horizontal": ["identity", "horizontal"]}.get(
        flip, ["identity", "horizontal", "vertical", "both"]
    )


def view(images: np.ndarray, name: str) -> np.ndarray:
    """One flip view of a (N, H, W, C) batch."""
    axes = {"identity": (), "horizontal": (2,), "vertical": (1,), "both": (1, 2)}[name]
    return np.flip(images, axis=axes) if axes else images


def write_teacher_predictions(model, samples, sample_folds, spec, config, fold, cv_dir, candidate) -> Path:
    """The fold model's probabilities for every labelled image in each flip view (float16).

    These are the soft targets a distilled student learns from, kept so that distillation can run
    later without the fold models (which stay out of the repository). Rows follow folds.json's
    sample order; the held-out rows double as flip test-time augmentation of the OOF predictions.
    """
    from ...data import load_arrays

    views = flip_views(spec.augmentation.get("flip"))
    x_all, y_all = load_arrays(
        samples, replace(spec, input_size=config.input_size or spec.input_size), list(spec.class_names)
    )
    stacked = np.stack(
        [model.predict(view(x_all, name).astype(np.float32), batch_size=64, verbose=0) for name in views], axis=1
    )
    path = teacher_path(spec.name, candidate, fold, cv_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        paths=np.array([relative_path(s) for s in samples]),
        folds=np.array(sample_folds, dtype=np.int8),
        y_true=y_all.astype(np.int16),
        views=np.array(views),
        probabilities=stacked.astype(np.float16),
        class_names=np.array(spec.class_names),
    )
    return path


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append(
                {
                    "stage": row["stage"],
                    "epoch": int(row["epoch"]),
                    "loss": float(row["loss"]),
                    "accuracy": float(row["val_accuracy"]),
                    "balanced_accuracy": float(row["val_balanced_accuracy"]),
                    "macro_auc": float(row["val_macro_auc"]),
                    "seconds": float(row["seconds"]),
                }
            )
    return rows
