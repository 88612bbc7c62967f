"""The home page: what MedSight does, the kinds of image it reads, and how well each model does."""

from __future__ import annotations

from flask import render_template

from cnn_model.modalities import MODALITIES, get_spec
from views.model_summaries import summaries
from views.results import example_image
from views.session import page_blueprint

bp = page_blueprint("web_pages", __name__)


@bp.get("/")
def home():
    models = summaries()
    kinds = [(get_spec(m), models.get(m), example_image(m)) for m in MODALITIES]
    return render_template("home.html", kinds=kinds)
