"""Browser pages: server-rendered HTML over the same managers as the API (templates/, static/).

One blueprint per area, each a module here: pages (home), account (sign-in, registration, the
account and its tokens), predictions (upload, result, history, images), jobs (batch jobs), models (the model cards),
admin. register_views binds them with the browser session's hooks, the template helpers and the
HTML error pages.
"""

from __future__ import annotations

from flask import Flask, current_app, render_template

from constants import PREDICTION_DISCLAIMER, PRIVACY_NOTE, SERVICE_DISCLAIMER, Role
from utils.errors import HTML_ERROR_PAGE, WEB_BLUEPRINTS
from views import account, admin, care, jobs, models, pages, predictions, spots
from views.results import finding_title, percent_text
from views.session import csrf_token, visitor

BLUEPRINTS = (pages.bp, account.bp, predictions.bp, jobs.bp, models.bp, admin.bp, care.bp, spots.bp)

ERROR_TITLES = {
    400: "This request could not be handled",
    401: "Please sign in",
    403: "You do not have access to this page",
    404: "Page not found",
    405: "This action is not possible here",
    413: "The file is too large",
    415: "This file type is not supported",
    422: "Some of what was sent is not valid",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "MedSight is not available right now",
}


def render_error_page(status: int, code: str, message: str, details: dict):
    """The HTML twin of the JSON error body (utils.errors calls it for browser pages)."""
    title = ERROR_TITLES.get(status, "Something went wrong")
    if status == 404:
        message = "There is nothing at this address, or it is not yours to see."
    elif status == 403 and code == "forbidden":
        message = "This page is for administrators only."
    elif status == 413 and code != "archive_too_large":  # an archive's refusal names its own limit
        message = f"The file is larger than {current_app.config['MAX_UPLOAD_MB']} MB. Choose a smaller image."
    elif status >= 500 and code == "internal_error":
        message = "The problem has been logged. Please try again in a few minutes."
    return render_template("error.html", status=status, title=title, message=message, code=code)


def register_views(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.extensions[WEB_BLUEPRINTS] = frozenset(blueprint.name for blueprint in BLUEPRINTS)
    app.extensions[HTML_ERROR_PAGE] = render_error_page
    app.add_template_filter(percent_text, "percent")

    @app.context_processor
    def _page_helpers() -> dict:
        return {
            "visitor": visitor,
            "csrf_token": csrf_token,
            "is_admin": lambda user: user is not None and user.role == Role.ADMIN.value,
            "disclaimer": SERVICE_DISCLAIMER,
            "result_disclaimer": PREDICTION_DISCLAIMER,
            "privacy_note": PRIVACY_NOTE,
            "care_of": care.care_of,
            "care_agreement": care.agreement_for_admin,
            "finding_title": finding_title,
        }
