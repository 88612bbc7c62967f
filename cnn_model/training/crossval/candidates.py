"""Candidate recipes: the overrides of a modality's shipped recipe that the folds compare (each modality's
spec lists its own, cnn_model.specs.CrossValidationPlan), as the recipe and spec a fold trains with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ...modalities import get_spec
from ...specs import ModalitySpec


def candidates(modality: str) -> Mapping[str, Mapping]:
    """The candidate recipes the modality's folds compare (its spec's cross_validation), name -> overrides."""
    return get_spec(modality).cross_validation.candidates


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


def candidate_recipe(modality: str, candidate: str) -> dict:
    try:
        overrides = candidates(modality)[candidate]
    except KeyError:
        known = ", ".join(candidates(modality))
        raise ValueError(f"no candidate {candidate!r} for {modality}; known: {known}") from None
    recipe = base_recipe(modality)
    recipe.update(overrides)
    return recipe
