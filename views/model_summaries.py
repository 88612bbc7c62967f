"""What the model pages show of each shipped model, from its card: what it reads and how well it does on images
it never saw. Shared by the pages that show models; not a blueprint."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cnn_model.card import HeldOutCheck as CardHeldOutCheck
from cnn_model.card import ModelCard
from cnn_model.modalities import MODALITIES, get_spec
from managers.models import ModelManager

SPLIT_NAMES = {"fit": "Training", "val": "Validation", "test_slice": "Test"}


def per_100(fraction: float | None) -> int | None:
    return None if fraction is None else round(fraction * 100)


def gap_in_points(ece: float | None) -> str | None:
    """An expected calibration error as the page says it: percentage points between confidence and accuracy."""
    if ece is None:
        return None
    points = round(ece * 100)
    if points < 1:
        return "under 1 point"
    return f"about {points} point{'s' if points != 1 else ''}"


@dataclass(frozen=True)
class Figures:
    """One held-out set's results, in the words the pages use."""

    name: str
    n: int
    correct_per_100: int | None
    at_prevalence_per_100: int | None
    balanced_per_100: int | None
    sensitivity_per_100: int | None
    specificity_per_100: int | None
    positives: int | None
    negatives: int | None
    macro_auc: float | None


@dataclass(frozen=True)
class ThresholdChoice:
    """Where the flagging threshold was chosen and what it was aimed at."""

    chosen_on_cross_validation: bool  # else on the validation set
    n: int | None  # images it was chosen on
    target_per_100: int | None
    # Flagging measured on images the threshold was not chosen on (each fold at a threshold set on the others).
    cross_fitted_sensitivity_per_100: int | None
    cross_fitted_specificity_per_100: int | None


@dataclass(frozen=True)
class MeanSpread:
    """A figure's mean over the cross-validation folds and its standard deviation."""

    mean: float
    sd: float

    @property
    def mean_per_100(self) -> int:
        return round(self.mean * 100)

    @property
    def sd_per_100(self) -> int:
        return round(self.sd * 100)


@dataclass(frozen=True)
class CrossValidation:
    """Grouped k-fold cross-validation: each fold scored by a model that never trained on it."""

    n: int | None
    folds: int
    correct: MeanSpread | None
    balanced: MeanSpread | None
    macro_auc: MeanSpread | None
    distilled: bool  # the served model learnt from the fold models: these are their figures


@dataclass(frozen=True)
class Int8Twin:
    """The served file is a float model fine-tuned to give its answers in 8-bit integer arithmetic."""

    teacher_version: str
    unseen: int  # images neither the teacher nor the fine-tuning trained on (val + test slice)
    flags_changed: int
    flags_lost_by_positives: int  # flagged images of the positive kinds the twin no longer flags


@dataclass(frozen=True)
class Calibration:
    """How close the shown confidence is to how often the model is right."""

    val_n: int | None
    val_gap: str | None  # the confidence as served, on the validation set
    tuned: bool
    tuned_on_val: bool  # fitted on the validation images themselves, so val_gap flatters it
    tuning_n: int | None
    tuning_gap_before: str | None
    tuning_gap_after: str | None  # cross-fitted where the card has it: on images the tuning was not fitted on
    has_plot: bool


@dataclass(frozen=True)
class HeldOutCheck:
    """The product owner's score of one version on data the team never sees."""

    version: str
    is_this_version: bool
    by: str
    data: str
    correct_per_100: int | None
    balanced_per_100: int | None
    macro_auc: float | None
    gap: str | None
    flag_rule: str | None
    sensitivity_per_100: int | None
    specificity_per_100: int | None
    recalls: list = field(default_factory=list)  # (finding display name, found per 100), from the check's note
    note: str | None = None  # the check's note, verbatim, when it is not a list of recalls


@dataclass(frozen=True)
class ModelSummary:
    """A model card as the pages show it."""

    modality: str
    display_name: str
    name: str
    version: str
    positive_word: str
    classes: list
    val: Figures | None
    test: Figures | None
    threshold: float | None
    source: str
    licence: str
    counts: list  # (class display name, {split: count})
    count_totals: dict
    splits: list
    split_rule: str
    limitations: str
    intended_use: str
    confusion_labels: list
    confusion_rows: list
    has_plots: bool
    threshold_choice: ThresholdChoice | None = None
    cross_validation: CrossValidation | None = None
    calibration: Calibration | None = None
    held_out_checks: list = field(default_factory=list)  # HeldOutCheck, as the card lists them
    int8_twin: Int8Twin | None = None

    @property
    def this_version_checked(self) -> bool:
        return any(check.is_this_version for check in self.held_out_checks)

    @property
    def headline(self) -> Figures | None:
        """The figures to quote first: the test set's, else validation's."""
        return self.test or self.val


def _figures(name: str, metrics: dict | None) -> Figures | None:
    if not metrics:
        return None
    binary = metrics.get("binary") or {}
    return Figures(
        name=name,
        n=metrics.get("n", 0),
        correct_per_100=per_100(metrics.get("accuracy")),
        at_prevalence_per_100=per_100(metrics.get("accuracy_at_prevalence")),
        balanced_per_100=per_100(metrics.get("balanced_accuracy")),
        sensitivity_per_100=per_100(binary.get("sensitivity")),
        specificity_per_100=per_100(binary.get("specificity")),
        positives=binary.get("positives"),
        negatives=binary.get("negatives"),
        macro_auc=metrics.get("macro_auc"),
    )


def _threshold_choice(card: ModelCard, spec, val_n: int | None) -> ThresholdChoice | None:
    decision = card.decision
    if decision is None or decision.positive_threshold is None:
        return None
    evidence = decision.threshold_evidence or {}
    cross_fitted = evidence.get("cross_fitted") or {}
    on_cv = decision.threshold_source == "cv_oof"
    # Older cards name no target in the decision; the spec's is the one the threshold was set for.
    target = evidence.get("sensitivity_target", getattr(spec, "sensitivity_target", None))
    return ThresholdChoice(
        chosen_on_cross_validation=on_cv,
        n=evidence.get("n") if on_cv else val_n,
        target_per_100=per_100(target),
        cross_fitted_sensitivity_per_100=per_100(cross_fitted.get("sensitivity")),
        cross_fitted_specificity_per_100=per_100(cross_fitted.get("specificity")),
    )


def _mean_spread(pair) -> MeanSpread | None:
    if not pair or len(pair) != 2 or None in pair:
        return None
    return MeanSpread(mean=pair[0], sd=pair[1])


def _cross_validation(card: ModelCard) -> CrossValidation | None:
    cv = card.cross_validation
    spread = cv.mean_sd_over_folds if cv else None
    if not spread:
        return None
    return CrossValidation(
        n=cv.n,
        folds=len(cv.per_fold) or 5,  # the cards' cross-validation is 5-fold
        correct=_mean_spread(spread.get("accuracy")),
        balanced=_mean_spread(spread.get("balanced_accuracy")),
        macro_auc=_mean_spread(spread.get("macro_auc")),
        distilled=bool(card.training.distilled_from),
    )


def _int8_twin(card: ModelCard) -> Int8Twin | None:
    learnt = card.quantisation_aware
    if not learnt:
        return None
    against = learnt["served_decisions_against_the_teacher"].values()
    return Int8Twin(
        teacher_version=learnt["teacher"]["served_as"],
        unseen=sum(split["n"] for split in against),
        flags_changed=sum(split["flag_flips"] for split in against),
        flags_lost_by_positives=sum(split["positives_unflagged"] for split in against),
    )


def _calibration(card: ModelCard, val_n: int | None) -> Calibration | None:
    calibration = card.calibration
    if calibration is None or not (calibration.val or calibration.oof):
        return None
    val, oof = calibration.val or {}, calibration.oof or {}
    # Where the served temperature was fitted: on val itself (a distilled student) or out of fold.
    fit = calibration.fit or {}
    tuned_on_val = bool(fit) and "val/" in calibration.rule
    tuning = fit if tuned_on_val else oof
    return Calibration(
        val_n=val_n,
        val_gap=gap_in_points(val.get("served_ece")),
        tuned=bool(tuning) and card.decision is not None and card.decision.temperature is not None,
        tuned_on_val=tuned_on_val,
        tuning_n=tuning.get("n"),
        tuning_gap_before=gap_in_points(tuning.get("ece_before")),
        tuning_gap_after=gap_in_points(tuning.get("ece_cross_fitted", tuning.get("ece_after"))),
        has_plot="reliability" in (card.plots or {}),
    )


RECALL_NOTE = re.compile(r"^recall:\s*(.+)$", re.IGNORECASE)
RECALL_ITEM = re.compile(r"^([\w-]+)\s+([01](?:\.\d+)?)$")


def _recalls_in_note(note: str, spec) -> list | None:
    """A note like "recall: melanoma 0.50, df 0.53" as (display name, found per 100); None if it is not one."""
    match = RECALL_NOTE.match(note.strip())
    if not match:
        return None
    found = []
    for item in match.group(1).split(","):
        parts = RECALL_ITEM.match(item.strip())
        if not parts:
            return None
        word = parts.group(1).lower()
        finding = next(
            (c for c in spec.classes if c.name == word or c.display_name.lower().startswith(word)),
            None,
        )
        if finding is None:
            return None
        found.append((finding.display_name, per_100(float(parts.group(2)))))
    return found


def _flag_rule_words(rule: str | None, positive_word: str) -> str | None:
    if not rule:
        return None
    if "top-1" in rule:
        return f"flagging an image when its single most likely finding is {positive_word}"
    if "threshold" in rule:
        return "flagging at the service's threshold"
    return f"flagging by {rule}"


def _held_out_check(check: CardHeldOutCheck, spec, version: str, positive_word: str) -> HeldOutCheck:
    flag = check.flag or {}
    note = check.note or ""
    recalls = _recalls_in_note(note, spec) if note else None
    which = check.which
    return HeldOutCheck(
        version=check.version,
        is_this_version=which == "this version" if which else check.version == version,
        by=check.by or "the product owner",
        data=check.data or "",
        correct_per_100=per_100(check.accuracy),
        balanced_per_100=per_100(check.balanced_accuracy),
        macro_auc=check.macro_auc,
        gap=gap_in_points(check.expected_calibration_error),
        flag_rule=_flag_rule_words(flag.get("rule"), positive_word),
        sensitivity_per_100=per_100(flag.get("sensitivity")),
        specificity_per_100=per_100(flag.get("specificity")),
        recalls=recalls or [],
        note=note if note and recalls is None else None,
    )


def summarise(card: ModelCard) -> ModelSummary:
    spec = get_spec(card.modality)
    metrics = card.metrics or {}
    data = card.training.data
    counts = data.get("counts") or {}
    splits = [s for s in ("fit", "val", "test_slice") if s in counts]
    test_metrics = metrics.get("test_slice")
    confusion = (test_metrics or metrics.get("val") or {}).get("confusion_matrix") or {}
    names = {c.name: c.display_name for c in spec.classes}
    plots = card.plots or {}
    val_n = (metrics.get("val") or {}).get("n")
    positive_word = "malignant" if spec.positive_flag == "is_malignant" else "abnormal"
    version = card.version
    return ModelSummary(
        modality=spec.name,
        display_name=spec.display_name,
        name=card.name,
        version=version,
        positive_word=positive_word,
        classes=list(spec.classes),
        val=_figures("validation", metrics.get("val")),
        test=_figures("test", test_metrics),
        threshold=card.decision.positive_threshold if card.decision else None,
        source=data.get("source", ""),
        licence=spec.dataset_licence,
        counts=[(names.get(c, c), {s: counts[s].get(c, 0) for s in splits}) for c in spec.class_names],
        count_totals={s: sum(counts[s].values()) for s in splits},
        splits=[(s, SPLIT_NAMES[s]) for s in splits],
        split_rule=data.get("split_rule", ""),
        limitations=card.limitations or "",
        intended_use=card.intended_use,
        confusion_labels=[names.get(label, label) for label in confusion.get("labels", [])],
        confusion_rows=list(
            zip(
                [names.get(label, label) for label in confusion.get("labels", [])],
                confusion.get("rows_true_cols_predicted", []),
                strict=False,
            )
        ),
        has_plots="confusion_matrix" in plots and "roc" in plots,
        threshold_choice=_threshold_choice(card, spec, val_n),
        cross_validation=_cross_validation(card),
        calibration=_calibration(card, val_n),
        held_out_checks=[_held_out_check(check, spec, version, positive_word) for check in card.held_out_checks or ()],
        int8_twin=_int8_twin(card),
    )


def summaries() -> dict[str, ModelSummary]:
    """Every installed model's summary, by modality, in the registry's order."""
    cards = {card.modality: card for card in ModelManager.model_cards()}
    return {m: summarise(cards[m]) for m in MODALITIES if m in cards}
