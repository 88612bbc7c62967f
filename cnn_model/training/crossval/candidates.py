"""Candidate recipes: the overrides of a modality's shipped recipe that the folds compare."""

from __future__ import annotations

from dataclasses import replace

from ...modalities import get_spec
from ...specs import ModalitySpec
from .folds import BREAST, CERVICAL_CYTOLOGY, CHEST_XRAY, SKIN_LESION

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
        # The film's neck strip and outer frame hidden in training and serving (model_runs/heatmaps/README.md:
        # the shipped model's normals peak at the thoracic inlet; a masked model on one split moved them
        # onto the lungs for 0.2-0.6 points of accuracy). The same folds decide whether that cost is real.
        "thorax_mask": {"input_mask": (0.15, 0.08, 0.08, 0.08)},
    },
}


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
        overrides = CANDIDATES[modality][candidate]
    except KeyError:
        known = ", ".join(CANDIDATES.get(modality, {}))
        raise ValueError(f"no candidate {candidate!r} for {modality}; known: {known}") from None
    recipe = base_recipe(modality)
    recipe.update(overrides)
    return recipe
