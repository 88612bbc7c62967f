"""The home page: what MedSight does, the kinds of image it reads, and how well each model does."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template

from cnn_model.modalities import MODALITIES, get_spec
from views.model_summaries import summaries
from views.session import page_blueprint

bp = page_blueprint("web_pages", __name__)


def example_image(modality: str) -> str | None:
    """static/examples/<modality>.jpg, if there is one (see static/examples/README.md)."""
    name = f"examples/{modality}.jpg"
    return name if (Path(current_app.static_folder) / name).is_file() else None


@bp.get("/")
def home():
    models = summaries()
    kinds = [(get_spec(m), models.get(m), example_image(m)) for m in MODALITIES]
    return render_template("home.html", kinds=kinds)
