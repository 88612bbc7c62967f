"""What the result pages show of one prediction, and how long a page of results is: shared by the pages
that show predictions (a user's own, an admin's view of anyone's); not a blueprint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from cnn_model.conformal import UNCERTAIN
from cnn_model.modalities import MODALITIES, get_spec
from cnn_model.specs import CaptureGuide, ClassSpec, ModalitySpec
from models import Prediction
from views.model_summaries import summaries

HISTORY_PAGE_SIZE = 20


def percent_text(probability: float) -> str:
    """A probability as a person reads it: never "0%" for a chance that is there, never "100%" for one that is
    not certain."""
    value = probability * 100
    if 0 < value < 0.5:
        return "<1%"
    if 99.5 <= value < 100:
        return ">99%"
    return f"{value:.0f}%"


@dataclass(frozen=True)
class ClassRow:
    name: str
    display_name: str
    description: str
    probability: float
    is_positive: bool

    @property
    def percent(self) -> str:
        return percent_text(self.probability)

    @property
    def bar_width(self) -> str:
        """The bar's length in the SVG's 0-100 user units."""
        return f"{max(self.probability, 0.0) * 100:.1f}"


def in_words(phrases: list[str]) -> str:
    """["a melanoma", "a mole", "a vascular lesion"] -> "a melanoma, a mole or a vascular lesion"."""
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} or {phrases[-1]}"


def candidates_sentence(spec: ModalitySpec, candidates: list[ClassSpec]) -> str:
    """What an uncertain result says: the findings the model could not tell apart, and who should look."""
    return (
        f"It looks most like {in_words([c.phrase for c in candidates])}; MedSight cannot tell these apart in "
        f"this image — {spec.advice.uncertain}."
    )


def set_members(prediction: Prediction, spec: ModalitySpec) -> list[ClassSpec]:
    """The prediction set's findings, most probable first; a row stored before sets existed has none."""
    known = set(spec.class_names)
    return [spec.class_spec(name) for name in prediction.prediction_set or () if name in known]


def finding_title(prediction: Prediction) -> str:
    """A result's name on the list pages: its finding, or for an uncertain one the findings its set could not tell
    apart ("Melanoma or melanocytic nevus (mole)"), so that no list names one finding the model was unsure of."""
    spec = get_spec(prediction.modality)
    members = set_members(prediction, spec) if prediction.certainty == UNCERTAIN else []
    if len(members) < 2:
        return spec.class_spec(prediction.label).display_name
    return in_words([members[0].display_name, *(_within_sentence(m.display_name) for m in members[1:])])


def _within_sentence(name: str) -> str:
    """A display name after the first word of a title: lower-cased, unless it starts with an abbreviation."""
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


def result_view(prediction: Prediction) -> dict:
    """What the result page shows about a prediction, worked out once for the template."""
    spec = get_spec(prediction.modality)
    finding = spec.class_spec(prediction.label)
    rows = sorted(
        (
            ClassRow(c.name, c.display_name, c.description, prediction.probabilities.get(c.name, 0.0), c.is_positive)
            for c in spec.classes
        ),
        key=lambda row: row.probability,
        reverse=True,
    )
    model = summaries().get(prediction.modality)
    candidates = set_members(prediction, spec)
    uncertain = len(candidates) > 1
    positive_word = "malignant" if spec.positive_flag == "is_malignant" else "abnormal"
    return {
        "prediction": prediction,
        "spec": spec,
        "finding": finding,
        "rows": rows,
        "positive_word": positive_word,
        # The page's headline is the flag, never a finding: with several candidates no single one is the answer.
        "headline": f"Flagged as possibly {positive_word}"
        if prediction.is_positive
        else f"Not flagged as {positive_word}",
        # "clear": one finding; "uncertain": several, said in words; None: a row from before prediction sets.
        "certainty": "uncertain" if uncertain else ("clear" if candidates else None),
        "candidates": candidates,
        "candidates_sentence": candidates_sentence(spec, candidates) if uncertain else None,
        "positive_percent": percent_text(sum(r.probability for r in rows if r.is_positive)),
        "model": model,
        "same_version": model is not None and model.version == prediction.model_version,
    }


def viewer_view(prediction: Prediction) -> dict:
    """What the larger view of a result's image shows: the result page's view, and whether brightness and contrast
    (window and level) are offered, as they are for the grey-scale kinds (X-rays, ultrasound)."""
    view = result_view(prediction)
    view["window_level"] = view["spec"].color_mode == "L"
    return view


def example_image(modality: str) -> str | None:
    """static/examples/<modality>.jpg, if there is one (see static/examples/README.md)."""
    name = f"examples/{modality}.jpg"
    return name if (Path(current_app.static_folder) / name).is_file() else None


def capture_guides() -> list[tuple[CaptureGuide, str | None]]:
    """The upload page's how-to screens: each kind's that has one, with its example picture."""
    return [(get_spec(m).capture_guide, example_image(m)) for m in MODALITIES if get_spec(m).capture_guide]
