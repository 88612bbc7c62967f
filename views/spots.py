"""The spots pages: the account's spots, and one spot's photos side by side in time order with a chart; sharing
them all with a clinician."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import redirect, render_template, request, url_for

from auth import current_user
from cnn_model.modalities import get_spec
from constants import BODY_SITES
from managers.shares import ShareManager
from managers.spots import SpotManager
from models import Prediction
from schemas.care import ShareCreateSchema
from schemas.spots import SpotChangeSchema
from utils.errors import AppError
from views.forms import FormErrors, form_values, load
from views.results import result_view
from views.session import page_blueprint, signed_in

bp = page_blueprint("web_spots", __name__)

SEE_OTHER = 303
# The chart's drawing box, in SVG user units; the plot sits inside the margins.
CHART_WIDTH, CHART_HEIGHT = 600, 200
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 44, 16, 12, 28
CHANGE_WORDS = {
    "finding": "the most likely finding",
    "set": "the findings it cannot rule out",
    "flag": "the flag",
}


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    percent: int
    prediction: Prediction


@dataclass(frozen=True)
class Entry:
    """One photo of the spot as the page shows it."""

    prediction: Prediction
    view: dict
    changed: str | None  # "changed since last time: ..." in words, or None


def chart_points(predictions: list[Prediction]) -> list[ChartPoint]:
    """The flagged probability of each photo, placed by its time between the first photo's and the last's."""
    if not predictions:
        return []
    start, end = predictions[0].created_at, predictions[-1].created_at
    span = (end - start).total_seconds()
    width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    points = []
    for p in predictions:
        share = (p.created_at - start).total_seconds() / span if span > 0 else 0.5
        probability = min(max(p.positive_probability, 0.0), 1.0)
        points.append(
            ChartPoint(
                x=round(CHART_LEFT + share * width, 1),
                y=round(CHART_TOP + (1 - probability) * height, 1),
                percent=round(probability * 100),
                prediction=p,
            )
        )
    return points


def changed_words(changes: tuple[str, ...]) -> str | None:
    if not changes:
        return None
    words = [CHANGE_WORDS[name] for name in changes]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


@bp.get("/spots")
@signed_in()
def index():
    return render_template(
        "spots/index.html", spots=SpotManager.list_for(current_user()), deleted=request.args.get("deleted") == "1"
    )


def _spot_page(
    spot_id: uuid.UUID,
    status: int = 200,
    errors: dict | None = None,
    values: dict | None = None,
    share_errors: dict | None = None,
):
    timeline = SpotManager.timeline(current_user(), spot_id)
    entries = [
        Entry(p, result_view(p), changed_words(changes))
        for p, changes in zip(timeline.predictions, timeline.changes(), strict=True)
    ]
    spec = get_spec(timeline.spot.modality)
    page = render_template(
        "spots/detail.html",
        timeline=timeline,
        spot=timeline.spot,
        spec=spec,
        entries=entries,
        points=chart_points(timeline.predictions),
        chart={
            "width": CHART_WIDTH,
            "height": CHART_HEIGHT,
            "left": CHART_LEFT,
            "right": CHART_WIDTH - CHART_RIGHT,
            "top": CHART_TOP,
            "bottom": CHART_HEIGHT - CHART_BOTTOM,
            "middle": CHART_TOP + (CHART_HEIGHT - CHART_TOP - CHART_BOTTOM) / 2,
        },
        body_sites=BODY_SITES,
        errors=errors or {},
        values=values or {"name": timeline.spot.name, "body_site": timeline.spot.body_site},
        renamed=request.args.get("renamed") == "1",
        share_errors=share_errors or {},
        shared=request.args.get("shared", type=int),
    )
    return page, status


@bp.get("/spots/<uuid:spot_id>")
@signed_in()
def detail(spot_id: uuid.UUID):
    return _spot_page(spot_id)


@bp.post("/spots/<uuid:spot_id>")
@signed_in()
def change(spot_id: uuid.UUID):
    values = form_values(request.form, ("name", "body_site"))
    try:
        form = load(SpotChangeSchema(), values)
        SpotManager.change(current_user(), spot_id, form.get("name"), form.get("body_site"))
    except FormErrors as errors:
        return _spot_page(spot_id, errors.status, errors.fields, values)
    except AppError as error:
        if error.status == 404:
            raise
        return _spot_page(spot_id, error.status, FormErrors.from_app_error(error, "name").fields, values)
    return redirect(url_for("web_spots.detail", spot_id=spot_id, renamed=1), code=SEE_OTHER)


@bp.post("/spots/<uuid:spot_id>/delete")
@signed_in()
def delete(spot_id: uuid.UUID):
    SpotManager.delete(current_user(), spot_id)
    return redirect(url_for("web_spots.index", deleted=1), code=SEE_OTHER)


@bp.post("/spots/<uuid:spot_id>/shares")
@signed_in()
def share(spot_id: uuid.UUID):
    try:
        body = load(ShareCreateSchema(), form_values(request.form, ("clinician_email",)))
        shared = ShareManager.share_spot(current_user(), spot_id, body["clinician_email"])
    except FormErrors:
        refused = {"clinician_email": ["Enter the email of your clinician's MedSight account."]}
        return _spot_page(spot_id, 422, share_errors=refused)
    except AppError as error:
        if error.status == 404:
            raise
        return _spot_page(spot_id, error.status, share_errors={"clinician_email": [error.message]})
    return redirect(
        url_for("web_spots.detail", spot_id=spot_id, shared=len(shared.shares), _anchor="share-title"), code=SEE_OTHER
    )
