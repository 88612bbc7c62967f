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
    if recipe.quantisation_aware:  # this run's float model is the teacher of the file that ships
        provenance["version"] = f"{recipe.version}-float"
    save_json(run_dir / "provenance.json", provenance)
    if not export:
        return provenance
    from .export import export_modality

    if recipe.quantisation_aware:
        return _quantisation_aware(modality, run_dir, Path(artifacts_dir), data_root, export_options or {})
    return export_modality(
        modality, run_dir=run_dir.parent, artifacts_dir=artifacts_dir, data_root=data_root, **(export_options or {})
    )


def _quantisation_aware(modality: str, run_dir: Path, artifacts_dir: Path, data_root: Path, options: dict) -> dict:
    """Export the float model as the teacher (float16, inside the run folder, never served), then serve its int8
    twin (cnn_model.training.qat) from artifacts_dir; the served folder is only written once the twin passes."""
    from .export import export_modality
    from .qat import fine_tune, write_artifact

    teachers = run_dir / "teacher"
    export_modality(
        modality,
        run_dir=run_dir.parent,
        artifacts_dir=teachers,
        data_root=data_root,
        quantizations=("float16",),
        max_bytes=None,
        **options,
    )
    step = get_spec(modality).recipe.quantisation_aware
    model_bytes, summary = fine_tune(modality, teachers / modality, step, work_dir=run_dir / "qat", data_root=data_root)
    card = write_artifact(
        modality, teachers / modality, artifacts_dir / modality, model_bytes, summary, data_root=data_root, **options
    )
    return {"modality": modality, "artifact": str(artifacts_dir / modality / "model.tflite"), "metrics": card.metrics}


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
