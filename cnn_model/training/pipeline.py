"""The train -> export -> evaluate pipeline behind `python -m cnn_model train`."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..data import TEST_SLICE_PERCENT, list_class_folder, split_test_slice
from ..modalities import get_spec
from ..runtime import ARTIFACTS_DIR

DEFAULT_DATA_ROOT = Path("../shared/datasets")
DEFAULT_BACKBONE = Path("../shared/weights/efficientnet_lite0/efficientnet_lite0_imagenet_notop.keras")


def train_modality(
    modality: str,
    *,
    data_root: Path,
    backbone: Path | None,
    run_dir: Path,
    artifacts_dir: Path = ARTIFACTS_DIR,
    head_epochs=None,
    finetune_epochs=None,
    input_size=None,
    input_mask=None,
    seed=42,
    export=True,
    export_options=None,
) -> dict:
    """Train one modality by its spec's recipe (arguments override its epochs and input size), then export and score it.

    The test slice is held out unless the recipe refits on all of train/ (TrainingRecipe.refit_all_train).
    """
    from .fit import TrainingConfig, save_json, train  # TensorFlow is imported here, not before

    spec = get_spec(modality)
    dataset_dir = Path(data_root) / modality
    train_samples = list_class_folder(dataset_dir / "train", spec)
    val_samples = list_class_folder(dataset_dir / "val", spec)
    recipe = spec.recipe
    fit_samples, test_samples = split_test_slice(train_samples)
    if recipe.refit_all_train:  # checked elsewhere (recipe_check); now the test slice is training data too
        fit_samples, test_samples = train_samples, []
    config = TrainingConfig(
        head_epochs=recipe.head_epochs if head_epochs is None else head_epochs,
        finetune_epochs=recipe.finetune_epochs if finetune_epochs is None else finetune_epochs,
        feature_layer=recipe.feature_layer,
        logit_adjustment=recipe.logit_adjustment,
        patience=recipe.patience_for(len(fit_samples)),
        select_on_val=not recipe.refit_all_train,
        input_size=input_size,
        input_mask=input_mask,
        seed=seed,
        backbone_path=str(backbone) if backbone else None,
    )
    run_dir = Path(run_dir) / modality
    print(
        f"{modality}: {len(fit_samples)} fit / {len(test_samples)} test-slice / {len(val_samples)} val images",
        flush=True,
    )
    fit_targets = None
    if recipe.distilled_from:
        from .distill import load_soft_targets

        fit_targets = load_soft_targets(modality, recipe.distilled_from, fit_samples)
    result = train(spec, fit_samples, val_samples, config, run_dir, fit_targets=fit_targets)
    result["model"].save(run_dir / "model.keras")
    provenance = {
        "modality": modality,
        "version": recipe.version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m cnn_model.training " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "training_seconds": result["seconds"],
        "best_epoch": result["best_epoch"],
        "class_weights": result["class_weights"],
        "config": result["config"],
        "backbone": _backbone_description(config),
        "data": _data_summary(
            dataset_dir, spec, fit_samples, test_samples, val_samples, recipe.refit_all_train, recipe.cv_candidate
        ),
        **{
            key: getattr(recipe, key)
            for key in ("recipe_check", "cv_candidate", "epoch_budget_source", "distilled_from")
            if getattr(recipe, key)
        },
    }
    save_json(run_dir / "provenance.json", provenance)
    if not export:
        return provenance
    from .export import export_modality

    export_options = dict(export_options or {})
    if recipe.quantisation_aware:  # the teacher: float weights, which the int8 twin is rebuilt from
        export_options["quantizations"] = ("float16",)
    exported = export_modality(
        modality, run_dir=run_dir.parent, artifacts_dir=artifacts_dir, data_root=data_root, **export_options
    )
    if recipe.quantisation_aware:
        return _quantisation_aware(modality, Path(artifacts_dir) / modality, run_dir, data_root)
    return exported


def _quantisation_aware(modality: str, artifact_dir: Path, run_dir: Path, data_root: Path) -> dict:
    """Move the float model's file aside as the teacher and serve its int8 twin (cnn_model.training.qat)."""
    import shutil

    from .qat import fine_tune, write_artifact
    from .scoring import score_artifact

    teacher_dir = run_dir / "teacher"
    shutil.rmtree(teacher_dir, ignore_errors=True)
    shutil.move(artifact_dir, teacher_dir)
    step = get_spec(modality).recipe.quantisation_aware
    model_bytes, summary = fine_tune(modality, teacher_dir, step, work_dir=run_dir / "qat", data_root=data_root)
    write_artifact(modality, teacher_dir, artifact_dir, model_bytes, summary, data_root=data_root)
    card = score_artifact(artifact_dir, data_root=data_root)
    return {"modality": modality, "artifact": str(artifact_dir), "metrics": card.metrics}


def _backbone_description(config) -> str:
    if not (config.backbone_path and Path(config.backbone_path).is_file()):
        return "compact CNN from scratch"
    cut = f", cut after {config.feature_layer}" if config.feature_layer else ""
    return f"EfficientNet-Lite0 (ImageNet-1k{cut})"


def _data_summary(dataset_dir, spec, fit_samples, test_samples, val_samples, refit=False, cv_candidate=None) -> dict:
    def counts(samples):
        return {name: sum(1 for s in samples if s.label == name) for name in spec.class_names}

    readme = dataset_dir / "README.md"
    source = (
        readme.read_text().splitlines()[0].lstrip("# ").replace("**", "").strip() if readme.is_file() else spec.name
    )
    split_rule = (
        f"val = the dataset's val/ folder (used to pick the best epoch); test slice = "
        f"{TEST_SLICE_PERCENT}% of train groups by salted sha1 of the group id, never trained "
        f"or tuned on; fit = the rest of train/"
    )
    if refit:
        checked = (
            f"by grouped 5-fold cross-validation over train/ + val/ (model_runs/{spec.name}/{cv_candidate})"
            if cv_candidate
            else f"with a {TEST_SLICE_PERCENT}% grouped test slice held out"
        )
        split_rule = (
            "fit = all of train/, a fixed epoch budget and the last epoch's weights (the same recipe "
            f"was first checked {checked}, see recipe_check); val = the dataset's val/ folder, never "
            "trained on and never used to choose"
        )
    return {
        "dataset": f"shared/datasets/{spec.name}",
        "source": source,
        "group_rule": spec.group_rule.description,
        "split_rule": split_rule,
        "counts": {"fit": counts(fit_samples), "test_slice": counts(test_samples), "val": counts(val_samples)},
    }
