"""What a modality's spec says: classes, input, training recipe, quality targets, grouping rule, what the
cross-validation compares, where the heatmap checks look, the advice a patient reads and its data's licence.

The types only; each modality fills them in its own module under cnn_model/modalities/, and the
registry there (SPECS, MODALITIES, get_spec) collects them; this module imports nothing of ours.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class ClassSpec:
    name: str  # exactly the dataset's folder name
    display_name: str
    description: str  # one plain sentence for the person who uploaded the image
    is_positive: bool  # malignant or abnormal, as the modality's positive_flag calls it
    # The SNOMED CT concept (id, preferred term) a hospital's systems know the class by, where one fits the
    # class as a whole; None: the class travels under MedSight's own coding scheme (services.interop.codes).
    snomed_ct: tuple[str, str] | None = None
    # The finding as it reads inside a sentence ("It looks most like a melanoma or a mole"); None: the
    # display name in lower case.
    in_a_sentence: str | None = None

    @property
    def phrase(self) -> str:
        return self.in_a_sentence or self.display_name.lower()


@dataclass(frozen=True)
class QuantisationAware:
    """The served file is the recipe's float model fine-tuned with int8 rounding (cnn_model.training.qat)."""

    teacher_version: str  # the float model it starts from and learns to imitate
    epochs: int
    learning_rate: float


@dataclass(frozen=True)
class TrainingRecipe:
    """What `python -m cnn_model train` does differently for this modality (training.TrainingConfig has the rest)."""

    version: str  # the model version the recipe produces; bumped with every shipped retrain
    head_epochs: int
    finetune_epochs: int
    feature_layer: str | None = None  # cut the pretrained backbone here (None: use it whole)
    logit_adjustment: float = 0.0  # tau of a logit-adjusted loss instead of class weights (training.TrainingConfig)
    patience: int | None = None  # epochs without a better val score before stopping; None: by data size
    # Train on all of train/ for the fixed epoch budget and keep the last epoch: val is then never used to
    # choose, and the test slice becomes training data. Three shipped recipes do this (breast, chest X-ray
    # and cervical cytology), each with an epoch budget checked by grouped folds (recipe_check says where).
    refit_all_train: bool = False
    recipe_check: str | None = None  # what the same recipe scored with the test slice held out, when refit
    # The cross-validation candidate (model_runs/<modality>/<name>/) whose grouped folds ran exactly this
    # recipe; None where no folds checked it. Its pooled OOF predictions set the threshold where the spec's
    # threshold_source is "cv_oof".
    cv_candidate: str | None = None
    epoch_budget_source: str | None = None  # how head_epochs + finetune_epochs were chosen, when refit
    # A distilled student: learn the calibrated soft targets of this cross-validation candidate's five fold
    # models (model_runs/<modality>/<name>/soft_targets.npz, cnn_model.training.distill) instead of the labels.
    distilled_from: str | None = None
    # Serve the float model's int8 twin, fine-tuned to keep its decisions (cnn_model.training.qat); None: the float
    # model's own file (float16 or int8 rounded after training, as export chooses).
    quantisation_aware: QuantisationAware | None = None

    def patience_for(self, fit_images: int) -> int:
        if self.patience is not None:
            return self.patience
        return 4 if fit_images > 2000 else 6


@dataclass(frozen=True)
class QualityTargets:
    """The project's quality bars for held-out data; the card names every figure below them."""

    accuracy: float
    balanced_accuracy: float
    macro_auc: float


@dataclass(frozen=True)
class GroupRule:
    """Maps an image path to its group id, so that no lesion, patient or smear straddles a split.

    Where a side file beside the split folders (DATASET/<side_file>, columns `path` and `side_column`)
    knows the group, it wins; otherwise from_file_name derives it from the path.
    """

    description: str  # written into the card's provenance
    from_file_name: Callable[[Path], str]
    side_file: str | None = None
    side_column: str | None = None
    # Where set, the cross-validation folds also link images whose difference hashes are close into one group
    # (a set with no patient ids that holds the same scan twice with a slightly different frame); it names them.
    near_duplicates: str | None = None

    def __call__(self, path: Path) -> str:
        path = Path(path)
        if self.side_file:
            # DATASET/SPLIT/CLASS/image: the side file sits in DATASET.
            known = _side_file_groups(path.parent.parent.parent / self.side_file, self.side_column)
            if path.name in known:
                return known[path.name]
        return self.from_file_name(path)


def image_path_group(path: Path) -> str:
    """Each image its own group (for sets that record no patient or lesion)."""
    return f"{path.parent.name}/{path.name}"


def file_name_prefix_group(*patterns: str) -> Callable[[Path], str]:
    """The group is group 1 of the first pattern that matches the start of the file stem (else the stem)."""
    compiled = [re.compile(pattern) for pattern in patterns]

    def group(path: Path) -> str:
        for pattern in compiled:
            match = pattern.match(path.stem)
            if match:
                return match.group(1)
        return path.stem

    return group


@lru_cache(maxsize=32)
def _side_file_groups(csv_path: Path, column: str) -> dict[str, str]:
    if not csv_path.is_file():
        return {}
    with open(csv_path, newline="") as handle:
        return {Path(row["path"]).name: row[column] for row in csv.DictReader(handle) if row.get(column)}


@dataclass(frozen=True)
class CrossValidationPlan:
    """What the grouped folds of cnn_model.training.crossval compare for this modality."""

    # The flag's sensitivity floor: the OOF threshold `crossval summary` reports is the highest keeping it.
    sensitivity_floor: float = 0.85
    # Candidate recipes, name -> overrides of the modality's shipped recipe. Keys are TrainingConfig fields,
    # plus "augmentation" (merged into the spec's), "resize_mode" and "epoch_rule" ("fixed" or "inner_val").
    candidates: Mapping[str, Mapping] = field(default_factory=lambda: {"baseline": {}})


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the square input, top-left origin


@dataclass(frozen=True)
class Region:
    """Union of boxes of the model's square input, or with frame > 0 its outer frame of that width."""

    boxes: tuple[Box, ...] = ()
    frame: float = 0.0
    colour: str | None = None  # outline on the contact sheets; None: not drawn


@dataclass(frozen=True)
class HeatmapRegions:
    """Named parts of the model's square input where the heatmap check measures the activation mass."""

    regions: Mapping[str, Region]
    peak_order: tuple[str, ...]  # a peak is named after the first of these holding it, else "other"
    # What the occlusion check hides, name -> region (None: nothing), where that question was asked.
    occlusions: Mapping[str, Region | None] = field(default_factory=dict)


# No anatomy to name: the lesion or cell is mostly centred, so compare the centre with the frame, where
# borders, rulers, padding and vignetting sit.
CENTRE_AND_BORDER = HeatmapRegions(
    regions={"centre": Region(boxes=((0.25, 0.25, 0.75, 0.75),), colour="lime"), "border": Region(frame=0.10)},
    peak_order=("centre",),
)


@dataclass(frozen=True)
class CaptureGuide:
    """One screen on the upload page on how to take a picture of this kind that the model can read."""

    title: str
    steps: tuple[tuple[str, str], ...]  # (what to do, in bold; why or how)
    example_caption: str  # under the kind's example picture (static/examples/<modality>.jpg), with its source


@dataclass(frozen=True)
class PatientAdvice:
    """What the result page tells the person who uploaded the image, flagged or not."""

    flagged: str = (
        "Please show this image to a doctor soon. A flag is not a diagnosis: many flagged images turn out to be "
        "harmless, but only a clinician can tell."
    )
    not_flagged: str = (
        "This does not rule anything out. If you are worried, or your symptoms change, talk to a clinician."
    )
    # Who should look when the prediction set holds more than one finding (ends the sentence "MedSight cannot
    # tell these apart in this image — ...").
    uncertain: str = "show it to a doctor"
    # Said when the gate does not recognise an image declared as this kind (a photo that is not of the
    # kind at all, a phone photo where a dermatoscope's is needed); None: the general refusal only.
    not_recognised: str | None = None


@dataclass(frozen=True)
class ModalitySpec:
    name: str
    display_name: str
    classes: tuple[ClassSpec, ...]
    positive_flag: str  # the response field that carries is_positive: "is_malignant" or "is_abnormal"
    input_size: int  # square model input, pixels per side
    color_mode: str  # "RGB" or "L": what the image is reduced to before it is fed as 3 channels
    resize_mode: str  # "stretch" (plain resize, as the dataset was made) or "pad" (keep aspect ratio)
    group_rule: GroupRule
    recipe: TrainingRecipe
    targets: QualityTargets
    data_caveats: str  # what the training data cannot tell, appended to the card's limitations
    upload_hint: str  # what a suitable image looks like, for whoever is about to upload one
    # The model's main limitation in one plain sentence, for the result page (the card has the full text).
    main_limitation: str = ""
    augmentation: dict = field(default_factory=dict)
    # The class mix the service expects to see, where it is known and differs from training
    # (see cnn_model.decision); None: serve the network's probabilities as they are.
    prevalence: dict[str, int] | None = None
    prevalence_source: str | None = None
    # "cv_oof": correct only part of the way, weights ** alpha with alpha chosen on the pooled out-of-fold
    # predictions of recipe.cv_candidate (decision.prevalence_power_choice: the most room on both the
    # accuracy-at-the-mix and the balanced-accuracy targets); None: the full correction.
    prevalence_power_source: str | None = None
    # Sensitivity that sets the malignant/abnormal threshold; None: the top-1 class decides.
    sensitivity_target: float | None = None
    # Where that threshold is set: "val" (the dataset's val/ folder, scored by the exported file) or
    # "cv_oof" (the pooled out-of-fold predictions of recipe.cv_candidate's grouped folds).
    threshold_source: str = "val"
    # "cv_oof": serve calibrated probabilities, the temperature fitted on the pooled out-of-fold
    # predictions of recipe.cv_candidate (cnn_model.calibration); "val": fitted on the served model's own
    # val predictions (a distilled student has no out-of-fold predictions of its own, and averaging its
    # calibrated teachers leaves it underconfident); None: the network's own confidence.
    calibration_source: str | None = None
    # Scores of shipped versions on the data owner's held-out part, as reported back to us (we never see
    # those images): {"version", "by", "data", "accuracy", "balanced_accuracy", "macro_auc", "flag": {...}}.
    held_out_checks: tuple[dict, ...] = ()
    # (top, bottom, left, right): fractions of the square input filled with the rest's mean colour, so the
    # network cannot read what lies there (a film's neck, markers and frame); None: the whole image.
    input_mask: tuple[float, float, float, float] | None = None
    dataset_licence: str = "See the dataset's own terms"  # its terms of use, as the dataset's README states them
    advice: PatientAdvice = PatientAdvice()
    capture_guide: CaptureGuide | None = None
    # Which instances of a PACS study this kind reads: their DICOM Modality values, and the BodyPartExamined
    # they must have where the PACS gives one. Empty: a PACS study is never read as this kind.
    dicom_modalities: frozenset[str] = frozenset()
    dicom_body_part: str | None = None
    cross_validation: CrossValidationPlan = CrossValidationPlan()
    heatmap_regions: HeatmapRegions = CENTRE_AND_BORDER
    # Coverage of the prediction sets (cnn_model.conformal): each class's images have their class in the set
    # at least this often; the card's thresholds are fitted for it.
    set_coverage: float = 0.9

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def positive_classes(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes if c.is_positive)

    def class_spec(self, name: str) -> ClassSpec:
        for spec in self.classes:
            if spec.name == name:
                return spec
        raise KeyError(name)
