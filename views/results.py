"""What the result pages show of one prediction, and how long a page of results is: shared by the pages
that show predictions (a user's own, an admin's view of anyone's); not a blueprint."""

from __future__ import annotations

from dataclasses import dataclass

from cnn_model.modalities import get_spec
from models import Prediction
from views.model_summaries import summaries

HISTORY_PAGE_SIZE = 20


@dataclass(frozen=True)
class ClassRow:
    name: str
    display_name: str
    description: str
    probability: float
    is_positive: bool

    @property
    def percent(self) -> str:
        value = self.probability * 100
        return "<1%" if 0 < value < 0.5 else f"{value:.0f}%"

    @property
    def bar_width(self) -> str:
        """The bar's length in the SVG's 0-100 user units."""
        return f"{max(self.probability, 0.0) * 100:.1f}"


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
    return {
        "prediction": prediction,
        "spec": spec,
        "finding": finding,
        "rows": rows,
        "positive_word": "malignant" if spec.positive_flag == "is_malignant" else "abnormal",
        "positive_percent": round(sum(r.probability for r in rows if r.is_positive) * 100),
        "model": model,
        "same_version": model is not None and model.version == prediction.model_version,
    }
