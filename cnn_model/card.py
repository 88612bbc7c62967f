"""The model card as a type: what export and rescore write next to a model, and what serving reads.

A card is a tree of frozen dataclasses, one class per section that someone reads field by field;
sections that are reports (metrics, evidence tables) stay JSON objects. ModelCard.load refuses a
card that lacks a field it needs, naming the field; save writes the JSON back with the keys in the
order the card was read (or, for a new card, in field order), so a card that is loaded and saved
unchanged is the same file byte for byte.

The shipped models lie in ARTIFACTS_DIR/<modality>/ as MODEL_FILE and CARD_FILE. No NumPy, no
LiteRT here: the settings read ARTIFACTS_DIR without loading the runtime.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self

# Where the shipped models are: the one default for the CLI, training, export and the app's MODEL_DIR.
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
MODEL_FILE = "model.tflite"
CARD_FILE = "card.json"


class ArtifactError(RuntimeError):
    """A model artifact is missing, altered, or does not match its card or spec."""


class CardError(ArtifactError):
    """A card file that does not hold a card: a field missing or of the wrong kind."""


_JSON_KINDS: dict[Any, tuple[type, ...]] = {
    str: (str,),
    bool: (bool,),
    int: (int,),
    float: (int, float),
    dict: (dict,),
    list: (list,),
}


@dataclass(frozen=True)
class CardSection:
    """One JSON object of a card, read into fields and written back with its keys in the order read."""

    _keys: tuple[str, ...] = field(default=(), compare=False, repr=False, kw_only=True)

    @classmethod
    def from_json(cls, data: Any, where: str = "card") -> Self:
        if not isinstance(data, dict):
            raise CardError(f"{where}: expected an object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        own = [f for f in fields(cls) if f.name != "_keys"]
        unknown = sorted(data.keys() - {f.name for f in own})
        if unknown:
            raise CardError(f"{where}.{unknown[0]}: not a field of {cls.__name__}")
        values = {}
        for f in own:
            if f.name not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise CardError(f"{where}.{f.name} is missing")
                continue
            values[f.name] = _read(hints[f.name], data[f.name], f"{where}.{f.name}")
        return cls(**values, _keys=tuple(data))

    @property
    def present_keys(self) -> tuple[str, ...]:
        """The keys its JSON object had, in their order (a section built in code: none)."""
        return self._keys

    def to_json(self) -> dict:
        names = [f.name for f in fields(self) if f.name != "_keys"]
        out = {}
        for name in [*self._keys, *(n for n in names if n not in self._keys)]:
            value = getattr(self, name)
            if value is None and name not in self._keys:
                continue  # an optional section this card does not have
            out[name] = _write(value)
        return out


def _read(kind: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _read(kind, value, where)
    if isinstance(kind, type) and issubclass(kind, CardSection):
        return kind.from_json(value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise CardError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_read(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    allowed = _JSON_KINDS.get(origin or kind)
    if allowed and (not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool))):
        raise CardError(f"{where}: expected {getattr(origin or kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _write(value: Any) -> Any:
    if isinstance(value, CardSection):
        return value.to_json()
    if isinstance(value, tuple):
        return [_write(item) for item in value]
    return value


@dataclass(frozen=True)
class CardFile(CardSection):
    """A whole card: read from and written to its card.json."""

    INDENT: ClassVar[int] = 2  # as the card's writer has always indented it

    @classmethod
    def load(cls, path: Path) -> Self:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CardError(f"{path}: cannot read the card ({exc})") from exc
        return cls.from_json(data, str(path))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=self.INDENT) + "\n")


@dataclass(frozen=True)
class CardClass(CardSection):
    name: str  # the dataset's folder name, as in the spec
    display_name: str
    description: str
    is_positive: bool


@dataclass(frozen=True)
class CardInput(CardSection):
    """What the network was trained to read; serving follows this, not the spec as it is today."""

    size: int
    color_mode: str
    resize_mode: str
    channels: int | None = None
    layout: str | None = None
    dtype: str | None = None
    value_range: list | None = None
    mask: list | None = None  # (top, bottom, left, right) fractions hidden; None: the whole image


@dataclass(frozen=True)
class CardArtifact(CardSection):
    sha256: str  # of MODEL_FILE: serving refuses a file that is not the one that was evaluated
    file: str | None = None
    format: str | None = None
    bytes: int | None = None
    quantization: Any = None


@dataclass(frozen=True)
class CardTraining(CardSection):
    """Provenance: the run that made the network, its data and settings."""

    modality: str
    version: str
    trained_at: str
    command: str
    training_seconds: float
    best_epoch: Any
    class_weights: dict
    config: dict
    backbone: str
    data: dict  # dataset folder, split rule and image counts per split ("fit", "test_slice", "val")
    recipe_check: str | None = None
    cv_candidate: str | None = None
    epoch_budget_source: str | None = None
    distilled_from: str | None = None
    export_command: str | None = None


@dataclass(frozen=True)
class CardServing(CardSection):
    runtime: str
    threads_per_interpreter: int
    median_ms_one_thread: float | None = None


@dataclass(frozen=True)
class CardDecision(CardSection):
    """How probabilities become the answer (cnn_model.decision); each number with its rule and evidence."""

    temperature: float | None = None
    temperature_rule: str | None = None
    calibration_evidence: dict | None = None
    class_weights: dict | None = None  # class -> prevalence weight
    class_weights_rule: str | None = None
    deployment_prevalence: dict | None = None
    deployment_prevalence_source: str | None = None
    prevalence_power: float | None = None
    prevalence_power_rule: str | None = None
    prevalence_power_evidence: dict | None = None
    positive_threshold: float | None = None  # None: the top-1 class decides the flag
    positive_threshold_rule: str | None = None
    threshold_source: str | None = None
    threshold_evidence: dict | None = None


@dataclass(frozen=True)
class CardTargets(CardSection):
    accuracy: float
    balanced_accuracy: float
    macro_auc: float


@dataclass(frozen=True)
class CardCalibration(CardSection):
    metric: str
    val: dict
    rule: str
    oof: dict | None = None
    fit: dict | None = None  # the temperature fit's report, where the card serves one


@dataclass(frozen=True)
class CardCrossValidation(CardSection):
    """The recipe's grouped cross-validation: where its records are (source) and what they showed."""

    source: str
    what: str
    n: int
    mean_sd_over_folds: dict
    per_fold: dict
    pooled_oof: dict
    flag_at_oof_threshold: dict | None = None
    flag_cross_fitted: dict | None = None


@dataclass(frozen=True)
class HeldOutCheck(CardSection):
    """A score on the data owner's held-out part, which only the data owner can run."""

    version: str
    by: str | None = None  # who ran it; the pages say "the product owner" where unnamed
    data: str | None = None
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    macro_auc: float | None = None
    expected_calibration_error: float | None = None
    flag: dict | None = None
    which: str | None = None  # "this version" or which earlier one
    note: str | None = None


@dataclass(frozen=True)
class CardConformal(CardSection):
    """Prediction sets with a coverage guarantee (cnn_model.conformal): the thresholds and what they gave."""

    method: str
    score: str
    coverage: float  # each class's images have their class in the set at least this often
    thresholds: dict  # class -> the highest score (1 - served probability) that keeps the class in the set
    calibration_source: str  # where the calibration predictions are (model_runs/...) and how they were served
    calibration_n: int
    calibration_counts: dict  # class -> calibration images
    calibration_choice: str  # why these predictions stand for the served model
    empty_set_rule: str
    report: dict  # mean set size, single-label share, coverage per class: out of fold, cross-fitted, checks


@dataclass(frozen=True)
class ModelCard(CardFile):
    """A classifier's card. Export writes the first part; scoring adds metrics and the sections after it."""

    name: str
    version: str
    modality: str
    display_name: str
    classes: tuple[CardClass, ...]
    positive_flag: str
    input: CardInput
    preprocessing: str
    architecture: str
    artifact: CardArtifact
    export_check: dict
    training: CardTraining
    serving: CardServing
    intended_use: str
    metrics: dict | None = None  # split ("val", "test_slice") -> the metrics report of that split
    plots: dict | None = None  # plot name -> file name next to the card
    targets: CardTargets | None = None
    limitations: str | None = None
    decision: CardDecision | None = None  # None: plain probabilities, the top-1 class decides
    calibration: CardCalibration | None = None
    cross_validation: CardCrossValidation | None = None
    distillation: dict | None = None
    quantisation_aware: dict | None = None  # how an int8 file was fine-tuned from its float teacher (training.qat)
    held_out_checks: tuple[HeldOutCheck, ...] | None = None
    conformal: CardConformal | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)


@dataclass(frozen=True)
class GateArtifact(CardSection):
    sha256: dict  # file name -> sha256, for every file of the gate


@dataclass(frozen=True)
class GateCard(CardFile):
    """The modality gate's card (cnn_model.gate)."""

    INDENT: ClassVar[int] = 1

    name: str
    version: str
    trained_at: str
    modalities: list
    input: dict
    method: str
    score: str
    data: dict
    metrics: dict
    export_check: dict
    serving: dict
    artifact: GateArtifact
    training_seconds: float
