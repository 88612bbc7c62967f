"""Grouped 5-fold cross-validation over a modality's train/ + val/, with out-of-fold predictions kept.

Recipes, epoch budgets, thresholds and decision rules are chosen on pooled out-of-fold (OOF)
predictions of the same folds for every candidate, not on one small test slice.

    python -m cnn_model.crossval folds --modality breast            # write cv/breast/folds.json
    python -m cnn_model.crossval fold --modality breast --candidate baseline --fold 0
    python -m cnn_model.crossval summary --modality breast          # mean ± sd and pooled OOF figures

Folds: every image of a group (lesion, patient, smear image, or for BUSI a near-duplicate
cluster) lands in one fold. Groups are placed largest first by a seeded greedy balance that
keeps each class's share per fold close to a fifth; equal-sized groups are taken in salted-sha1
order, so the assignment depends only on the sample list. folds.json (path -> fold) is written
once, committed, and read back by every fold run, so every candidate sees the same folds.

Inside a fold, nothing looks at the held-out fold to choose anything. The default epoch rule is
"fixed": the recipe's full epoch budget, the last epoch's weights kept (TrainingConfig
select_on_val=False). The held-out fold is passed to training only so that its figures are
logged after every epoch (they choose nothing in that fold; averaged over the five folds they
show which fixed budget a recipe should get). The "inner_val" rule instead keeps aside 15% of
the training folds' groups (salted sha1), picks the epoch on those with early stopping, and
scores the held-out fold once at the end.

Fold models go to training_runs_cv/ (git-ignored); OOF predictions and metrics to
cnn_model/cv/<modality>/<candidate>/fold<K>.npz / .json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shlex
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .calibration import oof_temperature
from .data import Sample, list_class_folder
from .decision import DecisionPolicy, positive_indices, prevalence_weights, sensitivity_threshold
from .metrics import accuracy_at_prevalence, balanced_accuracy, classification_report, macro_ovr_auc, roc_auc
from .modalities import MODALITIES, get_spec
from .specs import ModalitySpec

BREAST, CERVICAL_CYTOLOGY, CHEST_XRAY, SKIN_LESION = "breast", "cervical_cytology", "chest_xray", "skin_lesion"

PACKAGE_DIR = Path(__file__).resolve().parent
CV_DIR = PACKAGE_DIR / "cv"
DEFAULT_DATA_ROOT = Path("../shared/datasets")
DEFAULT_BACKBONE = Path("../shared/weights/efficientnet_lite0/efficientnet_lite0_imagenet_notop.keras")
DEFAULT_RUNS_DIR = Path("training_runs_cv")  # fold models; git-ignored (training_runs*/)

N_FOLDS = 5
FOLD_SALT = "medsight-cv5"
INNER_VAL_SALT = "medsight-cv-inner"
INNER_VAL_PERCENT = 15
# BUSI has no patient ids; the same scan often appears twice with a slightly different frame.
# The dataset README found its near-duplicates with a 256-bit difference hash at Hamming distance
# <= 8. This hash (Lanczos to 17x16 of the stored JPEG) puts the README's named pair
# benign_399 / malignant_93 at 9, and pairs at 10-12 were the same scans by eye, so the cut is 12:
# 39 linked pairs in train + val, groups of at most 3 images.
DHASH_SIZE = 16
DHASH_MAX_DISTANCE = 12

# The flag's sensitivity floor per modality: the OOF threshold is the highest one that keeps it.
SENSITIVITY_FLOOR = {SKIN_LESION: 0.85, BREAST: 0.85, CERVICAL_CYTOLOGY: 0.95, CHEST_XRAY: 0.95}

# Candidate recipes: overrides of the modality's base recipe (its spec's TrainingRecipe).
# Keys are TrainingConfig fields, plus "augmentation" (merged into the spec's), "resize_mode"
# and "epoch_rule" ("fixed" or "inner_val"; see the module docstring).
CANDIDATES: dict[str, dict[str, dict]] = {
    BREAST: {
        "baseline": {},
        # The source images are 256 px squares; 160 px throws away fine margin texture.
        "px224": {"input_size": 224},
        # The baseline again with another seed: a second look at the recipe's spread, and the fold models'
        # teacher files (written by every fold run since; the baseline's folds predate them) for the student.
        "seed7": {"seed": 7},
    },
    CERVICAL_CYTOLOGY: {
        "baseline": {},
        # Moderate dysplasia (94 train images) and severe are the weak recalls; the sqrt class
        # weights leave the loss leaning on severe (175) and carcinoma in situ (125).
        "balanced": {"class_weight_power": 1.0},
        # Baseline fold 0's held-out figures peaked early (fine-tune epoch 7, balanced 0.72) and
        # settled near 0.62 from epoch 28 on: a shorter cosine schedule, about 3x cheaper.
        "short15": {"finetune_epochs": 15},
        # The whole backbone (3.4M parameters) instead of the cut after block6d: more capacity for the
        # dysplasia grades, which the cut model confuses; short15's budget.
        "full_short15": {"finetune_epochs": 15, "feature_layer": None},
    },
    SKIN_LESION: {
        "baseline": {},
        # The held-out part says the rare classes are the problem (melanoma recall 0.50, akiec 0.36, df 0.53).
        # A logit-adjusted loss learns the balanced posterior directly, instead of sqrt class weights.
        "logit_adjusted": {"logit_adjustment": 1.0},
        # 224 px from the 200x150 source: more of the texture the rare classes differ by (slower by ~1.4x).
        "px224": {"input_size": 224},
    },
    CHEST_XRAY: {
        # 1.1.0's recipe on the whole film (the spec masks the input since 1.2.0).
        "baseline": {"input_mask": None},
        # The film's neck strip and outer frame hidden in training and serving (cnn_model/cv/heatmaps/README.md:
        # the shipped model's normals peak at the thoracic inlet; a masked model on one split moved them
        # onto the lungs for 0.2-0.6 points of accuracy). The same folds decide whether that cost is real.
        "thorax_mask": {"input_mask": (0.15, 0.08, 0.08, 0.08)},
    },
}


# ---------------------------------------------------------------- samples, groups and folds


def candidate_spec(spec: ModalitySpec, recipe: dict) -> ModalitySpec:
    """The spec a candidate trains and is scored with; takes its spec-level keys out of recipe.

    "augmentation" is merged into the spec's, "resize_mode" replaces it, and "input_mask" (kept in
    recipe for TrainingConfig) replaces the spec's mask, None included: the held-out fold and the
    teacher views must be preprocessed exactly as training was.
    """
    augmentation = recipe.pop("augmentation", None)
    resize_mode = recipe.pop("resize_mode", None)
    if augmentation is not None:
        spec = replace(spec, augmentation={**spec.augmentation, **augmentation})
    if resize_mode is not None:
        spec = replace(spec, resize_mode=resize_mode)
    if "input_mask" in recipe:
        mask = recipe["input_mask"]
        spec = replace(spec, input_mask=tuple(mask) if mask else None)
    return spec


def base_recipe(modality: str) -> dict:
    """The modality's shipped training recipe as TrainingConfig fields (version bookkeeping left out)."""
    recipe = get_spec(modality).recipe
    out = {"head_epochs": recipe.head_epochs, "finetune_epochs": recipe.finetune_epochs}
    if recipe.feature_layer:
        out["feature_layer"] = recipe.feature_layer
    if recipe.patience is not None:
        out["patience"] = recipe.patience
    return out


def labelled_samples(modality: str, data_root: Path) -> list[Sample]:
    """train/ + val/ with the cross-validation group of each image."""
    spec = get_spec(modality)
    dataset_dir = Path(data_root) / modality
    samples = list_class_folder(dataset_dir / "train", spec) + list_class_folder(dataset_dir / "val", spec)
    if modality == BREAST:
        samples = with_near_duplicate_groups(samples)
    return samples


def portable(text: str, root: Path) -> str:
    """text with the checkout's absolute paths made relative to it (../shared for the data and weights),
    so that what is committed names no machine's folders."""
    return text.replace(f"{root.parent}/shared/", "../shared/").replace(f"{root}/", "")


def relative_path(sample: Sample) -> str:
    """'train/benign/benign_12.jpg': the sample's path below the modality's dataset folder."""
    return "/".join(Path(sample.path).parts[-3:])


def dhash(path: Path, size: int = DHASH_SIZE) -> np.ndarray:
    """Difference hash: size x size bits, whether each pixel is brighter than its left neighbour."""
    from PIL import Image

    with Image.open(path) as image:
        small = np.asarray(image.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS), dtype=np.int16)
    return (small[:, 1:] > small[:, :-1]).ravel()


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int = DHASH_MAX_DISTANCE) -> list[tuple[int, int]]:
    distances = (hashes[:, None, :] != hashes[None, :, :]).sum(axis=2)
    i, j = np.nonzero(np.triu(distances <= max_distance, k=1))
    return list(zip(i.tolist(), j.tolist(), strict=True))


def merge_groups(samples: list[Sample], pairs) -> list[Sample]:
    """Union the groups of each linked pair; a merged group is named by its smallest member id."""
    parent = {s.group: s.group for s in samples}

    def root(g):
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for a, b in pairs:
        ra, rb = root(samples[a].group), root(samples[b].group)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [replace(s, group=root(s.group)) for s in samples]


def with_near_duplicate_groups(samples: list[Sample]) -> list[Sample]:
    hashes = np.stack([dhash(s.path) for s in samples])
    return merge_groups(samples, near_duplicate_pairs(hashes))


def _salted(value: str, salt: str = FOLD_SALT) -> str:
    return hashlib.sha1(f"{salt}:{value}".encode()).hexdigest()


def assign_folds(samples: list[Sample], n_folds: int = N_FOLDS, salt: str = FOLD_SALT) -> dict[str, int]:
    """group -> fold. Whole groups only; each class spread about evenly over the folds.

    Groups go largest first (ties in salted-sha1 order, so input order does not matter) to the
    fold where the group's classes are least filled relative to their per-fold target; ties go to
    the fold with fewer images, then the lower index.
    """
    labels = sorted({s.label for s in samples})
    index = {label: k for k, label in enumerate(labels)}
    group_counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(labels)))
    for s in samples:
        group_counts[s.group][index[s.label]] += 1
    target = np.zeros(len(labels))
    for counts in group_counts.values():
        target += counts
    target /= n_folds
    fill = np.zeros((n_folds, len(labels)))
    order = sorted(group_counts, key=lambda g: (-group_counts[g].sum(), _salted(g, salt)))
    assignment = {}
    for group in order:
        counts = group_counts[group]
        after = (fill + counts) / target  # fill ratio per fold and class if the group went there
        cost = (after * counts).sum(axis=1) / counts.sum()
        sizes = fill.sum(axis=1)
        fold = min(range(n_folds), key=lambda k: (round(cost[k], 9), sizes[k], k))
        fill[fold] += counts
        assignment[group] = fold
    return assignment


def folds_path(modality: str, cv_dir: Path = CV_DIR) -> Path:
    return Path(cv_dir) / modality / "folds.json"


def write_folds(modality: str, data_root: Path, cv_dir: Path = CV_DIR) -> dict:
    samples = labelled_samples(modality, data_root)
    group_fold = assign_folds(samples)
    sizes = Counter(s.group for s in samples)
    spec = get_spec(modality)
    table = {name: [0] * N_FOLDS for name in spec.class_names}
    for s in samples:
        table[s.label][group_fold[s.group]] += 1
    payload = {
        "modality": modality,
        "n_folds": N_FOLDS,
        "rule": (
            "train/ + val/ pooled; whole groups per fold, largest groups first, each to the fold where "
            f"its classes are least filled (salt {FOLD_SALT!r} orders equal-sized groups)"
        ),
        "group_rule": spec.group_rule.description
        + (
            f"; images whose {DHASH_SIZE}x{DHASH_SIZE} difference hashes differ in <= {DHASH_MAX_DISTANCE} "
            "bits are one group (BUSI's near-duplicate scans)"
            if modality == BREAST
            else ""
        ),
        "n_images": len(samples),
        "n_groups": len(group_fold),
        "multi_image_groups": sum(1 for n in sizes.values() if n > 1),
        "class_counts_per_fold": table,
        "folds": {relative_path(s): group_fold[s.group] for s in sorted(samples, key=relative_path)},
        # Only where grouping needed more than the spec's rule: BUSI's near-duplicate clusters.
        "groups": {relative_path(s): s.group for s in sorted(samples, key=relative_path) if sizes[s.group] > 1}
        if modality == BREAST
        else None,
    }
    path = folds_path(modality, cv_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return payload


def load_folds(modality: str, samples: list[Sample], cv_dir: Path = CV_DIR) -> list[int]:
    """The committed fold of each sample; refuses a folds.json that does not cover this sample list."""
    path = folds_path(modality, cv_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m cnn_model.crossval folds --modality {modality}`")
    folds = json.loads(path.read_text())["folds"]
    paths = [relative_path(s) for s in samples]
    if set(paths) != set(folds):
        missing, extra = set(paths) - set(folds), set(folds) - set(paths)
        raise ValueError(f"{path} does not match the data ({len(missing)} images missing, {len(extra)} extra)")
    return [folds[p] for p in paths]


def inner_split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(fit, inner val) by whole groups: 15% of groups by salted sha1, for the inner_val epoch rule."""
    held = [int(_salted(s.group, INNER_VAL_SALT), 16) % 100 < INNER_VAL_PERCENT for s in samples]
    return [s for s, h in zip(samples, held, strict=True) if not h], [
        s for s, h in zip(samples, held, strict=True) if h
    ]


# ---------------------------------------------------------------- training one fold


def candidate_recipe(modality: str, candidate: str) -> dict:
    try:
        overrides = CANDIDATES[modality][candidate]
    except KeyError:
        known = ", ".join(CANDIDATES.get(modality, {}))
        raise ValueError(f"no candidate {candidate!r} for {modality}; known: {known}") from None
    recipe = base_recipe(modality)
    recipe.update(overrides)
    return recipe


def fold_stem(modality: str, candidate: str, fold: int, cv_dir: Path = CV_DIR) -> Path:
    return Path(cv_dir) / modality / candidate / f"fold{fold}"


def set_threads(threads: int) -> None:
    """Limit TensorFlow's thread pools before any op runs (the machine is shared)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


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
    from .data import load_arrays
    from .training import TrainingConfig, train

    spec = get_spec(modality)
    class_names = list(spec.class_names)
    samples = labelled_samples(modality, data_root)
    sample_folds = load_folds(modality, samples, cv_dir)
    held = [s for s, f in zip(samples, sample_folds, strict=True) if f == fold]
    rest = [s for s, f in zip(samples, sample_folds, strict=True) if f != fold]
    if not held:
        raise ValueError(f"fold {fold} is empty")

    recipe = candidate_recipe(modality, candidate)
    recipe.update(recipe_overrides or {})
    epoch_rule = recipe.pop("epoch_rule", "fixed")
    train_spec = candidate_spec(spec, recipe)
    if epoch_rule == "fixed":
        fit, val = rest, held  # held-out fold: logged per epoch, never used to choose (select_on_val=False)
        recipe["select_on_val"] = False
    elif epoch_rule == "inner_val":
        fit, val = inner_split(rest)
        recipe["select_on_val"] = True
    else:
        raise ValueError(f"unknown epoch_rule {epoch_rule!r}")
    recipe.setdefault("patience", 4 if len(fit) > 2000 else 6)
    config = TrainingConfig(**recipe, backbone_path=str(backbone) if backbone else None)

    run_dir = Path(runs_dir) / modality / candidate / f"fold{fold}"
    print(
        f"{modality}/{candidate} fold {fold}: {len(fit)} fit / {len(val)} "
        f"{'held-out (logged only)' if epoch_rule == 'fixed' else 'inner val'} / {len(held)} held-out images; "
        f"epoch rule {epoch_rule}",
        flush=True,
    )
    started = time.time()
    result = train(train_spec, fit, val, config, run_dir)
    model = result["model"]
    model.save(run_dir / "model.keras")
    x_held, y_held = load_arrays(
        held, replace(train_spec, input_size=config.input_size or spec.input_size), class_names
    )
    probabilities = model.predict(x_held.astype(np.float32), batch_size=64, verbose=0).astype(np.float64)
    seconds = round(time.time() - started, 1)
    write_teacher_predictions(model, samples, sample_folds, train_spec, config, fold, cv_dir, candidate)

    fit_counts = {name: sum(1 for s in fit if s.label == name) for name in class_names}
    weights = prevalence_weights(spec, fit_counts, result["class_weights"])
    policy = DecisionPolicy(np.array([weights[n] for n in class_names]) if weights else None)
    served = policy.adjust(probabilities)
    report = classification_report(
        y_held, served, class_names, spec.positive_classes, bootstrap_rounds=0, prevalence=spec.prevalence
    )
    epochs = _read_log(run_dir / "training_log.csv")
    stem = fold_stem(modality, candidate, fold, cv_dir)
    stem.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        stem.with_suffix(".npz"),
        paths=np.array([relative_path(s) for s in held]),
        groups=np.array([s.group for s in held]),
        y_true=y_held.astype(np.int16),
        probabilities=probabilities.astype(np.float32),
        class_names=np.array(class_names),
    )
    root = Path(cv_dir).resolve().parent.parent
    payload = {
        "modality": modality,
        "candidate": candidate,
        "fold": fold,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": portable("python -m cnn_model.crossval " + " ".join(shlex.quote(a) for a in sys.argv[1:]), root),
        "epoch_rule": epoch_rule,
        "recipe": {k: v for k, v in CANDIDATES[modality][candidate].items()},
        "config": json.loads(portable(json.dumps(result["config"]), root)),
        "training_seconds": seconds,
        "kept_epoch": result["best_epoch"],
        "counts": {
            "fit": fit_counts,
            "inner_val": {n: sum(1 for s in val if s.label == n) for n in class_names}
            if epoch_rule == "inner_val"
            else None,
            "held_out": {n: sum(1 for s in held if s.label == n) for n in class_names},
        },
        "class_weights": result["class_weights"],
        "prevalence_weights": weights,
        "metrics": report,
        "epochs": epochs,
    }
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


def teacher_path(modality: str, candidate: str, fold: int, cv_dir: Path = CV_DIR) -> Path:
    return fold_stem(modality, candidate, fold, cv_dir).with_suffix(".teacher.npz")


def write_teacher_predictions(model, samples, sample_folds, spec, config, fold, cv_dir, candidate) -> Path:
    """The fold model's probabilities for every labelled image in each flip view (float16).

    These are the soft targets a distilled student learns from, kept so that distillation can run
    later without the fold models (which stay out of the repository). Rows follow folds.json's
    sample order; the held-out rows double as flip test-time augmentation of the OOF predictions.
    """
    from .data import load_arrays

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


# ---------------------------------------------------------------- summary


def load_candidate(
    modality: str,
    candidate: str,
    cv_dir: Path = CV_DIR,
    *,
    temperature: float | None = None,
    prevalence_power: float = 1.0,
) -> list[dict]:
    """Finished folds of a candidate: [{'fold', 'json', 'paths', 'y_true', 'probabilities', 'served'}].

    served: what the service would decide on: the fold's prevalence correction where the spec has one,
    after calibration with `temperature` where given, with the weights raised to `prevalence_power`.
    """
    spec = get_spec(modality)
    folds = []
    for fold in range(N_FOLDS):
        stem = fold_stem(modality, candidate, fold, cv_dir)
        if not (stem.with_suffix(".npz").is_file() and stem.with_suffix(".json").is_file()):
            continue
        meta = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz")) as data:
            if list(data["class_names"]) != list(spec.class_names):
                raise ValueError(f"{stem}.npz: classes differ from the spec")
            probabilities = data["probabilities"].astype(np.float64)
            weights = meta.get("prevalence_weights")
            weights = np.array([weights[n] for n in spec.class_names]) if weights else None
            policy = DecisionPolicy(None if weights is None else weights**prevalence_power, temperature=temperature)
            folds.append(
                {
                    "fold": fold,
                    "json": meta,
                    "paths": data["paths"].tolist(),
                    "y_true": data["y_true"].astype(np.int64),
                    "probabilities": probabilities,
                    "served": policy.adjust(probabilities),
                    "prevalence_weights": weights,
                }
            )
    return folds


def _flag_figures(y_true, scores, threshold, positive_idx) -> dict:
    truth = np.isin(y_true, positive_idx)
    flagged = scores >= threshold
    return {
        "sensitivity": float(np.mean(flagged[truth])) if truth.any() else float("nan"),
        "specificity": float(np.mean(~flagged[~truth])) if (~truth).any() else float("nan"),
    }


def summarise(
    modality: str,
    candidate: str,
    cv_dir: Path = CV_DIR,
    *,
    temperature: float | None = None,
    prevalence_power: float = 1.0,
) -> dict | None:
    """Mean ± sd over finished folds, pooled OOF figures and the OOF threshold for the sensitivity floor.

    temperature, prevalence_power: serve the OOF probabilities as a card's decision rule would (load_candidate).
    """
    spec = get_spec(modality)
    folds = load_candidate(modality, candidate, cv_dir, temperature=temperature, prevalence_power=prevalence_power)
    if not folds:
        return None
    n_classes = len(spec.class_names)
    mix = np.array([spec.prevalence[n] for n in spec.class_names], dtype=np.float64) if spec.prevalence else None
    positive_idx = positive_indices(spec)

    def figures(y, p) -> dict:
        predicted = p.argmax(axis=1)
        out = {
            "accuracy": float(np.mean(predicted == y)),
            "balanced_accuracy": balanced_accuracy(y, predicted, n_classes),
            "macro_auc": macro_ovr_auc(y, p),
            "binary_auc": roc_auc(np.isin(y, positive_idx), p[:, positive_idx].sum(axis=1)),
        }
        if mix is not None:
            out["accuracy_at_prevalence"] = accuracy_at_prevalence(y, predicted, mix)
        return out

    per_fold = {f["fold"]: figures(f["y_true"], f["served"]) for f in folds}
    keys = list(next(iter(per_fold.values())))
    mean_sd = {}
    for key in keys:
        values = np.array([v[key] for v in per_fold.values()])
        mean_sd[key] = [float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")]

    y = np.concatenate([f["y_true"] for f in folds])
    p = np.concatenate([f["served"] for f in folds])
    pooled = figures(y, p)
    predicted = p.argmax(axis=1)
    pooled["recall"] = {
        name: float(np.mean(predicted[y == k] == k)) for k, name in enumerate(spec.class_names) if np.any(y == k)
    }
    scores = p[:, positive_idx].sum(axis=1)
    top1 = np.isin(predicted, positive_idx)
    truth = np.isin(y, positive_idx)
    pooled["top1_flag"] = {"sensitivity": float(np.mean(top1[truth])), "specificity": float(np.mean(~top1[~truth]))}
    floor = SENSITIVITY_FLOOR[modality]
    threshold = math.floor(sensitivity_threshold(p, y, spec, floor) * 1e4) / 1e4
    pooled["threshold"] = {"floor": floor, "threshold": threshold, **_flag_figures(y, scores, threshold, positive_idx)}
    if len(folds) > 1:  # the threshold rule scored honestly: each fold flagged at the others' OOF threshold
        flags = []
        for f in folds:
            others = [g for g in folds if g is not f]
            t = sensitivity_threshold(
                np.concatenate([g["served"] for g in others]),
                np.concatenate([g["y_true"] for g in others]),
                spec,
                floor,
            )
            flags.append(f["served"][:, positive_idx].sum(axis=1) >= math.floor(t * 1e4) / 1e4)
        flags = np.concatenate(flags)
        pooled["threshold_cross_fitted"] = {
            "sensitivity": float(np.mean(flags[truth])),
            "specificity": float(np.mean(~flags[~truth])),
        }
    curves = _epoch_curves(folds)
    seconds = {f["fold"]: f["json"]["training_seconds"] for f in folds}
    calibration = None
    if len(folds) > 1:
        fitted = oof_temperature(folds)
        calibration = {key: fitted[key] for key in ("temperature", "ece_before", "ece_after", "ece_cross_fitted")}
    return {
        "modality": modality,
        "candidate": candidate,
        "folds_done": sorted(per_fold),
        "n_oof": int(len(y)),
        "per_fold": per_fold,
        "mean_sd": mean_sd,
        "pooled": pooled,
        "epoch_curve": curves,
        "calibration": calibration,
        "flip_tta": _flip_tta_figures(modality, candidate, folds, cv_dir, figures),
        "training_seconds": seconds,
        "epoch_rule": folds[0]["json"]["epoch_rule"],
    }


def _flip_tta_figures(modality, candidate, folds, cv_dir, figures) -> dict | None:
    """Pooled OOF figures with the flip views averaged (from the folds' teacher files), where every fold has one."""
    paths = [teacher_path(modality, candidate, f["fold"], cv_dir) for f in folds]
    if not all(p.is_file() for p in paths):
        return None
    ys, averaged = [], []
    for f, path in zip(folds, paths, strict=True):
        with np.load(path) as teacher:
            held = teacher["folds"] == f["fold"]
            views = teacher["probabilities"][held].astype(np.float64)  # (images, views, classes)
            ys.append(teacher["y_true"][held].astype(np.int64))
        weights = f["json"].get("prevalence_weights")
        policy = DecisionPolicy(np.array([weights[n] for n in get_spec(modality).class_names]) if weights else None)
        averaged.append(policy.adjust(views.mean(axis=1)))
    return {"views": int(views.shape[1]), **figures(np.concatenate(ys), np.concatenate(averaged))}


def _epoch_curves(folds) -> dict | None:
    """Held-out figures per epoch averaged over folds (fixed epoch rule only: logged, never chosen on)."""
    if any(f["json"]["epoch_rule"] != "fixed" or not f["json"]["epochs"] for f in folds):
        return None
    rows = defaultdict(list)
    for f in folds:
        for row in f["json"]["epochs"]:
            rows[(row["stage"], row["epoch"])].append(row)
    curve = []
    for (stage, epoch), group in rows.items():
        if len(group) != len(folds):
            continue
        curve.append(
            {
                "stage": stage,
                "epoch": epoch,
                "balanced_accuracy": float(np.mean([r["balanced_accuracy"] for r in group])),
                "accuracy": float(np.mean([r["accuracy"] for r in group])),
                "macro_auc": float(np.mean([r["macro_auc"] for r in group])),
            }
        )
    if not curve:
        return None
    best = max(curve, key=lambda r: r["balanced_accuracy"] + 0.1 * r["macro_auc"])
    return {"best": best, "last": curve[-1], "n_epochs": len(curve)}


def format_summary(s: dict) -> str:
    ms = s["mean_sd"]
    pooled = s["pooled"]

    def pm(key):
        mean, sd = ms[key]
        return f"{mean:.3f} ± {sd:.3f}" if not np.isnan(sd) else f"{mean:.3f}"

    lines = [
        f"{s['modality']}/{s['candidate']}: folds {s['folds_done']} ({s['n_oof']} OOF images, epoch rule "
        f"{s['epoch_rule']})",
        f"  mean ± sd over folds: accuracy {pm('accuracy')}, balanced {pm('balanced_accuracy')}, "
        f"macro AUC {pm('macro_auc')}, binary AUC {pm('binary_auc')}"
        + (f", accuracy at deployment mix {pm('accuracy_at_prevalence')}" if "accuracy_at_prevalence" in ms else ""),
        f"  pooled OOF: accuracy {pooled['accuracy']:.3f}, balanced {pooled['balanced_accuracy']:.3f}, "
        f"macro AUC {pooled['macro_auc']:.3f}, binary AUC {pooled['binary_auc']:.3f}"
        + (
            f", accuracy at deployment mix {pooled['accuracy_at_prevalence']:.3f}"
            if "accuracy_at_prevalence" in pooled
            else ""
        ),
        "  recall: " + ", ".join(f"{k} {v:.2f}" for k, v in pooled["recall"].items()),
        f"  flag, top-1 rule: sens {pooled['top1_flag']['sensitivity']:.3f} spec "
        f"{pooled['top1_flag']['specificity']:.3f}",
        f"  flag at OOF threshold {pooled['threshold']['threshold']} (sens floor {pooled['threshold']['floor']}): "
        f"sens {pooled['threshold']['sensitivity']:.3f} spec {pooled['threshold']['specificity']:.3f}",
    ]
    if "threshold_cross_fitted" in pooled:
        cf = pooled["threshold_cross_fitted"]
        lines.append(
            f"  same rule, each fold at the other folds' threshold: sens {cf['sensitivity']:.3f} "
            f"spec {cf['specificity']:.3f}"
        )
    if s["epoch_curve"]:
        best, last = s["epoch_curve"]["best"], s["epoch_curve"]["last"]
        lines.append(
            f"  held-out per epoch (mean over folds): last {last['stage']}:{last['epoch']} bal "
            f"{last['balanced_accuracy']:.3f} acc {last['accuracy']:.3f}; best {best['stage']}:{best['epoch']} bal "
            f"{best['balanced_accuracy']:.3f} acc {best['accuracy']:.3f} (for choosing a budget; optimistic as a score)"
        )
    if s["flip_tta"]:
        tta = s["flip_tta"]
        lines.append(
            f"  pooled OOF with {tta['views']}-view flip TTA: accuracy {tta['accuracy']:.3f}, balanced "
            f"{tta['balanced_accuracy']:.3f}, macro AUC {tta['macro_auc']:.3f}"
        )
    if s["calibration"]:
        c = s["calibration"]
        lines.append(
            f"  calibration: OOF ECE {c['ece_before']:.3f}; temperature {c['temperature']} -> {c['ece_after']:.3f}, "
            f"cross-fitted {c['ece_cross_fitted']:.3f}"
        )
    lines.append("  training seconds per fold: " + ", ".join(f"{k}: {v:.0f}" for k, v in s["training_seconds"].items()))
    return "\n".join(lines)


def format_table(summaries: list[dict]) -> str:
    """One markdown row per candidate: mean ± sd over folds, and the OOF flag at the OOF threshold."""
    lines = [
        "| modality | candidate | folds | accuracy | balanced accuracy | macro AUC | OOF threshold (floor) | "
        "sens / spec at it | cross-fitted sens / spec | ECE → calibrated (cross-fitted) | minutes per fold |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:

        def pm(key, s=s):
            mean, sd = s["mean_sd"][key]
            return f"{mean:.3f} ± {sd:.3f}" if not np.isnan(sd) else f"{mean:.3f}"

        t = s["pooled"]["threshold"]
        cf = s["pooled"].get("threshold_cross_fitted")
        accuracy = pm("accuracy")
        if "accuracy_at_prevalence" in s["mean_sd"]:
            accuracy += f" ({pm('accuracy_at_prevalence')} at the deployment mix)"
        minutes = [v / 60 for v in s["training_seconds"].values()]
        lines.append(
            f"| {s['modality']} | {s['candidate']} | {len(s['folds_done'])}/{N_FOLDS} | {accuracy} | "
            f"{pm('balanced_accuracy')} | {pm('macro_auc')} | {t['threshold']} ({t['floor']}) | "
            f"{t['sensitivity']:.3f} / {t['specificity']:.3f} | "
            + (f"{cf['sensitivity']:.3f} / {cf['specificity']:.3f}" if cf else "–")
            + " | "
            + (
                f"{s['calibration']['ece_before']:.3f} → {s['calibration']['ece_cross_fitted']:.3f}"
                if s["calibration"]
                else "–"
            )
            + f" | {min(minutes):.0f}–{max(minutes):.0f} |"
        )
    return "\n".join(lines)


def candidates_with_results(modality: str, cv_dir: Path = CV_DIR) -> list[str]:
    folder = Path(cv_dir) / modality
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("fold*.npz")))


# ---------------------------------------------------------------- command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_model.crossval", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    folds = commands.add_parser("folds", help="write cv/<modality>/folds.json (path -> fold)")
    folds.add_argument("--modality", required=True, choices=MODALITIES)
    folds.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    folds.add_argument("--force", action="store_true", help="overwrite an existing folds.json")
    folds.add_argument("--cv-dir", type=Path, default=CV_DIR)

    fold = commands.add_parser("fold", help="train one fold of one candidate recipe and keep its OOF predictions")
    fold.add_argument("--modality", required=True, choices=MODALITIES)
    fold.add_argument("--candidate", required=True)
    fold.add_argument("--fold", required=True, type=int, choices=range(N_FOLDS))
    fold.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    fold.add_argument("--backbone", type=Path, default=DEFAULT_BACKBONE)
    fold.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    fold.add_argument("--threads", type=int, default=1, help="TensorFlow intra- and inter-op threads")
    fold.add_argument("--force", action="store_true", help="retrain a fold whose results exist")
    fold.add_argument("--cv-dir", type=Path, default=CV_DIR, help="where folds.json is read and results written")

    summary = commands.add_parser("summary", help="mean ± sd over folds and pooled OOF figures")
    summary.add_argument("--modality", choices=MODALITIES, help="default: every modality with results")
    summary.add_argument("--candidate", help="default: every candidate with results")
    summary.add_argument("--json", action="store_true", help="print JSON instead of text")
    summary.add_argument("--table", action="store_true", help="print one markdown table row per candidate")
    summary.add_argument("--cv-dir", type=Path, default=CV_DIR)

    args = parser.parse_args(argv)
    if args.command == "folds":
        path = folds_path(args.modality, args.cv_dir)
        if path.is_file() and not args.force:
            print(f"{path} exists (the folds every candidate shares); --force to rebuild", file=sys.stderr)
            return 1
        payload = write_folds(args.modality, args.data_root, args.cv_dir)
        print(
            f"{path}: {payload['n_images']} images, {payload['n_groups']} groups "
            f"({payload['multi_image_groups']} with several images)"
        )
        for name, counts in payload["class_counts_per_fold"].items():
            print(f"  {name:22s} {counts}")
        return 0
    if args.command == "fold":
        stem = fold_stem(args.modality, args.candidate, args.fold, args.cv_dir)
        if stem.with_suffix(".json").is_file() and not args.force:
            print(f"{stem}.json exists; --force to retrain", file=sys.stderr)
            return 0
        candidate_recipe(args.modality, args.candidate)  # fail fast on an unknown name
        set_threads(args.threads)
        train_fold(
            args.modality,
            args.candidate,
            args.fold,
            data_root=args.data_root,
            backbone=args.backbone,
            runs_dir=args.runs_dir,
            cv_dir=args.cv_dir,
        )
        return 0
    modalities = [args.modality] if args.modality else list(MODALITIES)
    results = []
    for modality in modalities:
        for candidate in [args.candidate] if args.candidate else candidates_with_results(modality, args.cv_dir):
            s = summarise(modality, candidate, args.cv_dir)
            if s:
                results.append(s)
    if args.json:
        print(json.dumps(results, indent=1))
    elif args.table:
        print(format_table(results))
    else:
        print("\n\n".join(format_summary(s) for s in results) if results else "no finished folds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
