"""The care loop's pages: sharing a result with a clinician or by a link, the clinician's queue and review, the
report PDF, the patient's active links, and the read-only page a link opens for a doctor without an account."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from flask import Response, redirect, render_template, request, url_for

from auth import current_user, limiter
from constants import SHARE_LINK_DAYS_DEFAULT, SHARE_LINK_DAYS_MAX, SHARE_LINK_RATE_LIMIT, Role
from managers.reports import ReportManager, review_sentence
from managers.reviews import ReviewManager
from managers.share_links import ShareLinkManager
from managers.shares import ShareManager
from models import Prediction, User
from schemas.care import LinkCreateSchema, ReportQuerySchema, ReviewCreateSchema, ShareCreateSchema
from schemas.reviews import VERDICTS
from utils.errors import AppError, LinkGone
from utils.responses import pdf_response, share_link_url, stream_response
from views.forms import FormErrors, form_values, load
from views.results import result_view
from views.session import page_blueprint, signed_in, visitor

bp = page_blueprint("web_care", __name__)

SEE_OTHER = 303
clinician_only = signed_in(Role.CLINICIAN)
# Banners after a change, named by a code in the address so a link cannot put words on the page.
CARE_MESSAGES = {
    "shared": "Shared. The clinician sees this result in their review queue.",
    "unshared": "No longer shared: the clinician cannot open this result any more.",
    "link_revoked": "Link revoked: it no longer opens.",
}
# A page a link opens: never kept by a cache, never indexed, and its address (the token) never sent on.
LINK_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
}


def care_of(prediction: Prediction) -> dict:
    """What the result page's sharing block shows: the review, the clinicians and links it is shared with now."""
    user: User = current_user()
    own = prediction.owner_id == user.id
    return {
        "review": review_sentence(prediction.review) if prediction.review else None,
        "own": own,
        "shares": ShareManager.active_for(user, prediction.id) if own else [],
        "links": ShareLinkManager.active_for(user, prediction.id) if own else [],
        "message": CARE_MESSAGES.get(request.args.get("care", "")),
        "days_default": SHARE_LINK_DAYS_DEFAULT,
        "days_max": SHARE_LINK_DAYS_MAX,
    }


def agreement_for_admin(modality: str) -> list | None:
    """The model page's table of clinicians' verdicts per version: for a signed-in admin only, else None."""
    user = visitor()
    if user is None or user.role != Role.ADMIN.value:
        return None
    return ReviewManager.agreement(modality)


def _back_to_result(prediction_id: uuid.UUID, done: str):
    return redirect(
        url_for("web_predictions.result", prediction_id=prediction_id, care=done, _anchor="care-title"), code=SEE_OTHER
    )


# -- the patient: share with a clinician, links, the report --------------------------------------------


@bp.post("/predictions/<uuid:prediction_id>/shares")
@signed_in()
def share(prediction_id: uuid.UUID):
    try:
        body = load(ShareCreateSchema(), form_values(request.form, ("clinician_email",)))
        ShareManager.share(current_user(), prediction_id, body["clinician_email"])
    except FormErrors:
        return _share_refused(prediction_id, "Enter the email of your clinician's MedSight account.")
    except AppError as error:
        if error.status == 404:
            raise
        return _share_refused(prediction_id, error.message, error.status)
    return _back_to_result(prediction_id, "shared")


def _share_refused(prediction_id: uuid.UUID, message: str, status: int = 422):
    return render_template("care/share_refused.html", prediction_id=prediction_id, message=message), status


@bp.post("/predictions/<uuid:prediction_id>/shares/<uuid:share_id>/revoke")
@signed_in()
def unshare(prediction_id: uuid.UUID, share_id: uuid.UUID):
    ShareManager.revoke(current_user(), prediction_id, share_id)
    return _back_to_result(prediction_id, "unshared")


def reader_zone() -> ZoneInfo | None:
    """The report's ?tz= (the browser's own zone, which the page's script adds); None for UTC.

    A zone this server does not know (a browser's tz database newer than ours) gives the report in UTC, which the
    report names, rather than an error page the reader can do nothing about.
    """
    try:
        return load(ReportQuerySchema(), form_values(request.args, ("tz",)))["zone"]
    except FormErrors:
        return None


@bp.get("/predictions/<uuid:prediction_id>/report.pdf")
@signed_in()
def report(prediction_id: uuid.UUID):
    return pdf_response(ReportManager.for_owner(current_user(), prediction_id, reader_zone()), prediction_id)


@bp.post("/predictions/<uuid:prediction_id>/links")
@signed_in()
def create_link(prediction_id: uuid.UUID):
    body = load(LinkCreateSchema(), form_values(request.form, ("expires_in_days",)))
    made = ShareLinkManager.create(current_user(), prediction_id, body["expires_in_days"])
    return render_template(
        "care/link_created.html", made=made, url=share_link_url(made.token), prediction_id=prediction_id
    )


@bp.get("/links")
@signed_in()
def links():
    return render_template(
        "care/links.html",
        links=ShareLinkManager.active_for(current_user()),
        message=CARE_MESSAGES.get(request.args.get("care", "")),
    )


@bp.post("/predictions/<uuid:prediction_id>/links/<uuid:link_id>/revoke")
@signed_in()
def revoke_link(prediction_id: uuid.UUID, link_id: uuid.UUID):
    ShareLinkManager.revoke(current_user(), prediction_id, link_id)
    return redirect(url_for("web_care.links", care="link_revoked"), code=SEE_OTHER)


# -- the clinician: queue, a shared result, a verdict ----------------------------------------------------


@bp.get("/reviews")
@clinician_only
def queue():
    return render_template("care/queue.html", items=ReviewManager.queue(current_user()))


def _review_page(prediction: Prediction, errors: dict | None = None, values: dict | None = None, status: int = 200):
    page = render_template(
        "care/review.html",
        **result_view(prediction),
        verdicts=VERDICTS,
        errors=errors or {},
        values=values or {},
        review=review_sentence(prediction.review) if prediction.review else None,
        recorded=request.args.get("recorded") == "1",
    )
    return page, status


@bp.route("/reviews/<uuid:prediction_id>", methods=["GET", "POST"])
@clinician_only
def review(prediction_id: uuid.UUID):
    prediction = ReviewManager.open(current_user(), prediction_id)
    if request.method == "GET":
        return _review_page(prediction)
    values = form_values(request.form, ("verdict", "finding", "comment"))
    try:
        body = load(ReviewCreateSchema(), values)
        ReviewManager.record(current_user(), prediction_id, body["verdict"], body["finding"], body["comment"])
    except FormErrors as errors:
        return _review_page(prediction, errors.fields, values, errors.status)
    except AppError as error:
        if error.status == 404:
            raise
        return _review_page(prediction, FormErrors.from_app_error(error).fields, values, error.status)
    return redirect(url_for("web_care.review", prediction_id=prediction_id, recorded=1), code=SEE_OTHER)


@bp.get("/reviews/<uuid:prediction_id>/<any(image, heatmap):kind>")
@clinician_only
def review_image(prediction_id: uuid.UUID, kind: str):
    return stream_response(ReviewManager.open_image(current_user(), prediction_id, kind, link=False).stream)


# -- anyone holding a link ----------------------------------------------------------------------------


def _link_gone() -> Response:
    response = Response(render_template("care/link_gone.html"), status=410)
    response.headers.update(LINK_PAGE_HEADERS)
    return response


def _link_page(response: Response) -> Response:
    response.headers.update(LINK_PAGE_HEADERS)
    return response


link_rate_limited = limiter.limit(SHARE_LINK_RATE_LIMIT, scope="share_link:address")


@bp.get("/s/<token>")
@link_rate_limited
def shared(token: str):
    try:
        prediction = ShareLinkManager.open(token)
    except LinkGone:
        return _link_gone()
    review = review_sentence(prediction.review) if prediction.review else None
    page = render_template("care/shared.html", **result_view(prediction), token=token, review=review)
    return _link_page(Response(page))


@bp.get("/s/<token>/<any(image, heatmap):kind>")
@link_rate_limited
def shared_image(token: str, kind: str):
    try:
        return _link_page(stream_response(ShareLinkManager.open_image(token, kind).stream))
    except LinkGone:
        return _link_gone()


@bp.get("/s/<token>/report.pdf")
@link_rate_limited
def shared_report(token: str):
    try:
        data = ReportManager.for_link(token, reader_zone())
    except LinkGone:
        return _link_gone()
    return _link_page(pdf_response(data))
