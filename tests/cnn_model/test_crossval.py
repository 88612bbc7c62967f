"""Grouped folds and the OOF summary on synthetic samples: no TensorFlow, no datasets."""

import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from cnn_model.data import Sample
from cnn_model.modalities import get_spec
from cnn_model.training.crossval import candidates as cv_candidates
from cnn_model.training.crossval import folds as cv_folds
from cnn_model.training.crossval import summary as cv_summary
from cnn_model.training.crossval.fold_run import FoldSplit, fit_and_val, fold_record


def synthetic_samples(seed=0, n_groups=120) -> list[Sample]:
    """Groups of 1-9 images, mostly one class each, some mixed; 3 classes at unequal rates."""
    rng = random.Random(seed)
    samples = []
    for g in range(n_groups):
        main = rng.choices(["benign", "malignant", "normal"], weights=[6, 3, 1])[0]
        for i in range(rng.choice([1, 1, 1, 2, 3, 5, 9])):
            label = main if rng.random() < 0.9 else rng.choice(["benign", "malignant", "normal"])
            samples.append(Sample(Path(f"train/{label}/g{g}_{i}.jpg"), label, f"group{g}"))
    return samples


def fold_of_each(samples, assignment):
    return [assignment[s.group] for s in samples]


def test_every_group_lands_in_exactly_one_fold():
    samples = synthetic_samples()
    assignment = cv_folds.assign_folds(samples)
    folds_per_group = defaultdict(set)
    for sample, fold in zip(samples, fold_of_each(samples, assignment), strict=True):
        folds_per_group[sample.group].add(fold)
    assert set(folds_per_group) == {s.group for s in samples}
    assert all(len(folds) == 1 for folds in folds_per_group.values())
    assert set(assignment.values()) == set(range(cv_folds.N_FOLDS))


def test_folds_are_deterministic_and_ignore_input_order():
    samples = synthetic_samples()
    shuffled = samples[:]
    random.Random(1).shuffle(shuffled)
    assert cv_folds.assign_folds(samples) == cv_folds.assign_folds(shuffled) == cv_folds.assign_folds(samples)


def test_each_class_is_spread_evenly_as_far_as_groups_allow():
    samples = synthetic_samples()
    folds = fold_of_each(samples, cv_folds.assign_folds(samples))
    largest_group = max(Counter(s.group for s in samples).values())
    for label in {s.label for s in samples}:
        per_fold = Counter(f for s, f in zip(samples, folds, strict=True) if s.label == label)
        counts = [per_fold.get(k, 0) for k in range(cv_folds.N_FOLDS)]
        assert max(counts) - min(counts) <= largest_group, (label, counts)


def test_near_duplicates_are_merged_transitively():
    samples = [Sample(Path(f"train/benign/b{i}.jpg"), "benign", f"benign/b{i}.jpg") for i in range(5)]
    hashes = np.zeros((5, 256), dtype=bool)
    hashes[1, :3] = True  # 3 bits from 0
    hashes[2, :10] = True  # 7 bits from 1, 10 from 0: linked through 1
    hashes[3, 100:200] = True  # far from everything
    hashes[4, 100:205] = True  # 5 bits from 3
    pairs = cv_folds.near_duplicate_pairs(hashes, max_distance=8)
    assert sorted(pairs) == [(0, 1), (1, 2), (3, 4)]
    merged = cv_folds.merge_groups(samples, pairs)
    assert [s.group for s in merged] == ["benign/b0.jpg"] * 3 + ["benign/b3.jpg"] * 2


def test_inner_validation_split_keeps_groups_whole():
    samples = synthetic_samples(n_groups=200)
    fit, inner = cv_folds.inner_split(samples)
    assert len(fit) + len(inner) == len(samples)
    assert not {s.group for s in fit} & {s.group for s in inner}
    assert 0.05 < len({s.group for s in inner}) / 200 < 0.3


def write_fake_fold(cv_dir, modality, candidate, fold, rng, n=60):
    spec = get_spec(modality)
    k = len(spec.class_names)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    stem = cv_folds.fold_stem(modality, candidate, fold, cv_dir)
    stem.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        stem.with_suffix(".npz"),
        paths=np.array([f"train/x/{fold}_{i}.jpg" for i in range(n)]),
        groups=np.array([f"{fold}_{i}" for i in range(n)]),
        y_true=y.astype(np.int16),
        probabilities=probabilities.astype(np.float32),
        class_names=np.array(spec.class_names),
    )
    epochs = [
        {"stage": "finetune", "epoch": e, "loss": 1.0, "accuracy": 0.5, "balanced_accuracy": 0.4 + e / 100}
        | {"macro_auc": 0.8, "seconds": e}
        for e in range(1, 4)
    ]
    meta = {"epoch_rule": "fixed", "training_seconds": 10.0, "prevalence_weights": None, "epochs": epochs}
    stem.with_suffix(".json").write_text(json.dumps(meta))
    return y, probabilities


@pytest.mark.parametrize("modality", ["breast", "cervical_cytology"])
def test_summary_pools_the_folds_and_meets_the_sensitivity_floor(tmp_path, modality):
    rng = np.random.default_rng(0)
    written = [write_fake_fold(tmp_path, modality, "baseline", fold, rng) for fold in (0, 1, 3)]
    summary = cv_summary.summarise(modality, "baseline", tmp_path)
    assert summary["folds_done"] == [0, 1, 3]
    assert summary["n_oof"] == sum(len(y) for y, _ in written)
    pooled = summary["pooled"]
    y = np.concatenate([y for y, _ in written])
    p = np.concatenate([p for _, p in written])
    assert pooled["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    assert pooled["threshold"]["sensitivity"] >= get_spec(modality).cross_validation.sensitivity_floor
    assert 0 <= pooled["threshold_cross_fitted"]["sensitivity"] <= 1
    assert summary["epoch_curve"]["best"]["epoch"] == 3
    assert "mean ± sd" in cv_summary.format_summary(summary)
    assert f"| {modality} | baseline | 3/5 |" in cv_summary.format_table([summary])
    assert cv_summary.summarise(modality, "nothing_here", tmp_path) is None


def test_a_candidate_trains_and_is_scored_with_its_own_input_mask():
    spec = get_spec("chest_xray")
    assert spec.input_mask is not None  # the served recipe masks the film's margins

    unmasked = cv_candidates.candidate_recipe("chest_xray", "baseline")
    assert cv_candidates.candidate_spec(spec, unmasked).input_mask is None
    masked = cv_candidates.candidate_recipe("chest_xray", "thorax_mask")
    assert cv_candidates.candidate_spec(spec, masked).input_mask == spec.input_mask
    recipe = {"augmentation": {"zoom": 0.3}, "resize_mode": "letterbox", "head_epochs": 1}
    changed = cv_candidates.candidate_spec(spec, recipe)
    assert changed.augmentation["zoom"] == 0.3 and changed.augmentation["contrast"] == spec.augmentation["contrast"]
    assert changed.resize_mode == "letterbox" and changed.input_mask == spec.input_mask
    assert recipe == {"head_epochs": 1}  # what is left is TrainingConfig's


def _split_of(samples: list[Sample], fold: int = 0) -> FoldSplit:
    group_fold = cv_folds.assign_folds(samples)
    sample_folds = [group_fold[s.group] for s in samples]
    held = [s for s, f in zip(samples, sample_folds, strict=True) if f == fold]
    rest = [s for s, f in zip(samples, sample_folds, strict=True) if f != fold]
    return FoldSplit(samples, sample_folds, held, rest)


def test_a_fixed_epoch_fold_trains_on_the_other_folds_and_only_logs_its_own():
    split = _split_of(synthetic_samples())
    recipe: dict = {}
    fit, val = fit_and_val(split, "fixed", recipe)
    assert (fit, val) == (split.rest, split.held)
    assert recipe == {"select_on_val": False, "patience": 6}


def test_an_inner_val_fold_chooses_its_epoch_on_groups_of_the_other_folds():
    split = _split_of(synthetic_samples())
    recipe = {"patience": 3}
    fit, val = fit_and_val(split, "inner_val", recipe)
    assert sorted(map(str, fit + val)) == sorted(map(str, split.rest))
    assert not {s.group for s in fit} & {s.group for s in val} and not set(val) & set(split.held)
    assert recipe == {"select_on_val": True, "patience": 3}  # the candidate's own patience is kept
    with pytest.raises(ValueError, match="unknown epoch_rule"):
        fit_and_val(split, "best_of_three", {})


def test_a_fold_records_its_recipe_as_the_modality_lists_it(tmp_path):
    result = {"config": {"seed": 7}, "best_epoch": 28, "class_weights": {"benign": 1.0}}
    record = fold_record("breast", "seed7", 2, "fixed", result, 12.5, {"fit": {}}, tmp_path)
    assert record["recipe"] == dict(get_spec("breast").cross_validation.candidates["seed7"]) == {"seed": 7}
    assert list(record)[:3] == ["modality", "candidate", "fold"] and record["kept_epoch"] == 28
