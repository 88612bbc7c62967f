"""The model pages: what each shipped model reads and how well it does on images it never saw, from its card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import abort, current_app, render_template, send_file

from cnn_model.modalities import MODALITIES, get_spec
from managers.models import ModelManager
from views.session import page_blueprint

bp = page_blueprint("web_models", __name__)

# The datasets' terms of use, as their READMEs state them; the cards name the source but not its licence.
DATASET_LICENCES = {
    "skin_lesion": "CC BY-NC 4.0 (non-commercial use with attribution; HAM10000, Tschandl et al. 2018)",
    "chest_xray": "CC BY 4.0 (attribution; Kermany, Zhang and Goldbaum 2018)",
    "breast": "Published open access with its article (Al-Dhabyani et al. 2020); no formal licence found",
    "cervical_cytology": "Free research benchmark (Herlev, Jantzen et al. 2005); no formal licence found",
}
SPLIT_NAMES = {"fit": "Training", "val": "Validation", "test_slice": "Test"}


def per_100(fraction: float | None) -> int | None:
    return None if fraction is None else round(fraction * 100)


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


def summarise(card: dict) -> ModelSummary:
    spec = get_spec(card["modality"])
    metrics = card.get("metrics") or {}
    data = (card.get("training") or {}).get("data") or {}
    counts = data.get("counts") or {}
    splits = [s for s in ("fit", "val", "test_slice") if s in counts]
    test_metrics = metrics.get("test_slice")
    confusion = (test_metrics or metrics.get("val") or {}).get("confusion_matrix") or {}
    names = {c.name: c.display_name for c in spec.classes}
    plots = card.get("plots") or {}
    return ModelSummary(
        modality=spec.name,
        display_name=spec.display_name,
        name=card.get("name", ""),
        version=card.get("version", ""),
        positive_word="malignant" if spec.positive_flag == "is_malignant" else "abnormal",
        classes=list(spec.classes),
        val=_figures("validation", metrics.get("val")),
        test=_figures("test", test_metrics),
        threshold=(card.get("decision") or {}).get("positive_threshold"),
        source=data.get("source", ""),
        licence=DATASET_LICENCES.get(spec.name, "See the dataset's own terms"),
        counts=[(names.get(c, c), {s: counts[s].get(c, 0) for s in splits}) for c in spec.class_names],
        count_totals={s: sum(counts[s].values()) for s in splits},
        splits=[(s, SPLIT_NAMES[s]) for s in splits],
        split_rule=data.get("split_rule", ""),
        limitations=card.get("limitations", ""),
        intended_use=card.get("intended_use", ""),
        confusion_labels=[names.get(label, label) for label in confusion.get("labels", [])],
        confusion_rows=list(
            zip(
                [names.get(label, label) for label in confusion.get("labels", [])],
                confusion.get("rows_true_cols_predicted", []),
                strict=False,
            )
        ),
        has_plots="confusion_matrix" in plots and "roc" in plots,
    )


def summaries() -> dict[str, ModelSummary]:
    """Every installed model's summary, by modality, in the registry's order."""
    cards = {card["modality"]: card for card in ModelManager.cards()["items"]}
    return {m: summarise(cards[m]) for m in MODALITIES if m in cards}


@bp.get("/models")
def index():
    return render_template("models/index.html", models=summaries(), specs=[get_spec(m) for m in MODALITIES])


@bp.get("/models/<modality>")
def detail(modality: str):
    model = summaries().get(modality)
    if model is None:
        abort(404)
    return render_template("models/detail.html", model=model)


@bp.get("/models/<modality>/<any(confusion_matrix, roc):plot>.png")
def plot(modality: str, plot: str):
    """A figure from the model card, next to the card in the model directory."""
    card = next((c for c in ModelManager.cards()["items"] if c["modality"] == modality), None)
    file_name = ((card or {}).get("plots") or {}).get(plot)
    if not file_name:
        abort(404)
    path = Path(current_app.config["MODEL_DIR"]) / modality / Path(file_name).name
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/png", max_age=3600)
