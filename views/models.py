"""The model pages: what each shipped model reads and how well it does on images it never saw, from its card."""

from __future__ import annotations

from pathlib import Path

from flask import abort, current_app, render_template, send_file

from cnn_model.modalities import MODALITIES, get_spec
from managers.models import ModelManager
from views.model_summaries import summaries
from views.session import page_blueprint

bp = page_blueprint("web_models", __name__)


@bp.get("/models")
def index():
    return render_template("models/index.html", models=summaries(), specs=[get_spec(m) for m in MODALITIES])


@bp.get("/models/<modality>")
def detail(modality: str):
    model = summaries().get(modality)
    if model is None:
        abort(404)
    return render_template("models/detail.html", model=model)


@bp.get("/models/<modality>/<any(confusion_matrix, roc, reliability):plot>.png")
def plot(modality: str, plot: str):
    """A figure from the model card, next to the card in the model directory."""
    card = next((c for c in ModelManager.model_cards() if c.modality == modality), None)
    file_name = ((card.plots if card else None) or {}).get(plot)
    if not file_name:
        abort(404)
    path = Path(current_app.config["MODEL_DIR"]) / modality / Path(file_name).name
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/png", max_age=3600)
