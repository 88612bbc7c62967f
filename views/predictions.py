"""Upload an image, read its result, page through the history, open the photo and heatmap (also larger, to zoom),
delete a result."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Response, current_app, redirect, render_template, request, url_for
from marshmallow import ValidationError, validates_schema

from auth import current_user, upload_rate_limited
from cnn_model.modalities import MODALITIES, get_spec
from constants import (
    AUTO_MODALITY,
    BODY_SITES,
    PAGE_READ_WINDOW_SECONDS,
    PREDICTION_NOTE_MAX_LENGTH,
    SPOT_NAME_MAX_LENGTH,
    THUMBNAIL_CACHE_SECONDS,
    Role,
)
from managers.hospital_formats import FormatKind, HospitalFormats
from managers.models import ModelManager
from managers.predictions import ImageDownload, PredictionFilters, PredictionManager
from managers.spots import SpotChoice, SpotManager
from models import User
from schemas.pagination import CursorField
from schemas.predictions import PredictionQuerySchema, PredictionUploadSchema
from utils.errors import AppError
from utils.responses import document_response
from views.forms import FormErrors, day_bounds, form_values, load, load_filters
from views.results import HISTORY_PAGE_SIZE, capture_guides, result_view, viewer_view
from views.session import page_blueprint, signed_in

bp = page_blueprint("web_predictions", __name__)

SEE_OTHER = 303

# -- upload -----------------------------------------------------------------------------------


def _upload_refusal(error: AppError, declared: str | None) -> str:
    """A manager's refusal of an upload, in a plain sentence."""
    told = get_spec(declared).advice.not_recognised if declared in MODALITIES else None
    if error.code == "not_a_medical_image" and told:
        return f"{told} This image was not recognised as one, so it was not classified."
    detected = error.details.get("detected")
    if error.code == "modality_mismatch" and detected in MODALITIES and declared in MODALITIES:
        return (
            f"This image looks like {get_spec(detected).display_name}, not {get_spec(declared).display_name} as chosen."
        )
    limit_mb = current_app.config["MAX_UPLOAD_MB"]
    sentences = {
        "payload_too_large": f"The file is larger than {limit_mb} MB. Choose a smaller image.",
        "unsupported_media_type": "This file is not an image MedSight can read. "
        "Use a JPEG, PNG, BMP, TIFF or WebP image.",
        "empty_file": "The file is empty. Choose an image file.",
        "invalid_image": "The file could not be read as an image; it may be damaged. Try another copy of it.",
        "image_too_large": "The image has too many pixels to read safely. Use a smaller version of it.",
        "not_a_medical_image": "This does not look like any kind of medical image MedSight reads "
        "(a skin lesion photo, a chest X-ray, a breast ultrasound or a Pap smear cell), so it was not classified.",
        "modality_mismatch": "This image does not look like the kind you chose. Check the kind of image, "
        "or let MedSight detect it.",
        "model_unavailable": "The model for this kind of image is not available right now. Please try again later.",
        "storage_unavailable": "Your image could not be stored just now, so nothing was kept. "
        "Please try again in a few minutes.",
        "database_unavailable": "Your result could not be saved just now, so nothing was kept. "
        "Please try again in a few minutes.",
    }
    return sentences.get(error.code, error.message)


def _upload_form_errors(messages: dict) -> dict[str, list[str]]:
    """Schema messages for the upload form, reworded where the API's wording would puzzle a person."""
    errors: dict[str, list[str]] = {}
    for name, field_messages in messages.items():
        if name == "modality":
            errors[name] = ["Choose the kind of image you are uploading."]
        elif name in ("file", "image", "upload"):
            errors["file"] = ["Choose an image file to upload."]
        elif name == "note":
            errors[name] = [f"Keep the note to {PREDICTION_NOTE_MAX_LENGTH} characters or fewer."]
        elif name == "spot":
            errors[name] = [f"Give the spot a name of at most {SPOT_NAME_MAX_LENGTH} characters, or leave it empty."]
        elif name == "body_site":
            errors[name] = ["Choose where on the body the spot is from the list."]
        else:
            errors[name] = field_messages
    return errors


def _upload_page(
    status: int = 200, errors: dict | None = None, values: dict | None = None, detected: str | None = None
):
    kinds = [(get_spec(m), get_spec(m).upload_hint) for m in MODALITIES]
    auto_modality = AUTO_MODALITY if ModelManager.gate_version() is not None else None
    page = render_template(
        "predictions/upload.html",
        kinds=kinds,
        auto_modality=auto_modality,
        errors=errors or {},
        # A fresh form starts on "Detect automatically" where the gate is shipped.
        values=values if values is not None else {"modality": auto_modality},
        max_upload_mb=current_app.config["MAX_UPLOAD_MB"],
        # The kind the gate saw in a refused upload of another declared kind: offered in one click.
        detected=get_spec(detected) if detected in MODALITIES else None,
        note_max=PREDICTION_NOTE_MAX_LENGTH,
        guides=capture_guides(),
        spots=SpotManager.list_for(current_user()),
        spot_max=SPOT_NAME_MAX_LENGTH,
        body_sites=BODY_SITES,
    )
    return page, status


@bp.route("/upload", methods=["GET", "POST"])
@signed_in()
@upload_rate_limited  # the API's limit, counted in the same bucket
def upload():
    if request.method == "GET":
        return _upload_page()
    values = form_values(request.form, ("modality", "note", "spot", "body_site"))
    if "file" in request.files:
        values["file"] = request.files["file"]
    try:
        form = load(PredictionUploadSchema(), values)
        spot = SpotChoice(form["spot"], None, form["body_site"] if form["spot"] else None)
        prediction = PredictionManager.create(
            current_user(), form["modality"], form["upload"].stream, form["note"], spot
        )
    except FormErrors as errors:
        return _upload_page(errors.status, _upload_form_errors(errors.fields), values)
    except AppError as error:
        if error.code == "spot_modality_mismatch":
            return _upload_page(error.status, {"spot": [error.message]}, values)
        detected = error.details.get("detected") if error.code == "modality_mismatch" else None
        refusal = _upload_refusal(error, values.get("modality"))
        return _upload_page(error.status, {"file": [refusal]}, values, detected)
    return redirect(url_for("web_predictions.result", prediction_id=prediction.id), code=SEE_OTHER)


# -- one result -------------------------------------------------------------------------------


@bp.get("/predictions/<uuid:prediction_id>")
@signed_in()
def result(prediction_id: uuid.UUID):
    prediction = PredictionManager.get_for(current_user(), prediction_id)
    return render_template("predictions/result.html", **result_view(prediction), admin_view=False)


@bp.get("/predictions/<uuid:prediction_id>/view")
@signed_in()
def view(prediction_id: uuid.UUID):
    """The photo and its heatmap, larger, to zoom and pan; the owner's only, as the result page is."""
    prediction = PredictionManager.get_for(current_user(), prediction_id)
    return render_template("predictions/view.html", **viewer_view(prediction), admin_view=False)


def send_download(download: ImageDownload, *, attachment_name: str | None = None) -> Response:
    """The stored bytes, passed on as they come from storage; never cached."""
    stream = download.stream
    response = Response(stream.chunks, mimetype=stream.content_type)
    response.content_length = stream.length
    if attachment_name:
        response.headers["Content-Disposition"] = f'attachment; filename="{attachment_name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _extension(content_type: str) -> str:
    return {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/bmp": "bmp"}.get(
        content_type, content_type.rsplit("/", 1)[-1] or "img"
    )


@bp.get('/predictions/<uuid:prediction_id>/<any("dicom-sr", "dicom-source", "dicom-heatmap", fhir):kind>')
@signed_in()
def hospital_document(prediction_id: uuid.UUID, kind: FormatKind):
    """The result as a DICOM SR, the image it is about or the heatmap as DICOM, or a FHIR Bundle, for a hospital."""
    document = HospitalFormats.for_owner(current_user(), prediction_id, kind, url_for("models.Models", _external=True))
    return document_response(document.data, document.content_type, document.filename)


@bp.get("/predictions/<uuid:prediction_id>/<any(image, heatmap):kind>")
@signed_in()
def image(prediction_id: uuid.UUID, kind: str):
    """The photo or heatmap: the owner's, or for an admin anyone's (that read audited, as in the API).

    Always the bytes, never a redirect to a storage URL: the pages' Content-Security-Policy lets images come
    from MedSight only (img-src 'self'), and the photo stays behind the session.
    """
    user: User = current_user()
    if user.role == Role.ADMIN.value:
        window = timedelta(seconds=PAGE_READ_WINDOW_SECONDS)
        download = PredictionManager.open_any_image(user, prediction_id, kind, link=False, read_within=window)
    else:
        download = PredictionManager.open_image(user, prediction_id, kind, link=False)
    name = None
    if request.args.get("download") == "1" and kind == "image":
        name = f"medsight-{prediction_id}.{_extension(download.stream.content_type)}"
    return send_download(download, attachment_name=name)


@bp.get("/predictions/<uuid:prediction_id>/thumbnail")
@signed_in()
def thumbnail(prediction_id: uuid.UUID):
    """The history's small square of one of the reader's own photos.

    It never changes while the result exists, so this browser alone (private, per session cookie) may keep it for a
    while; the photo and the heatmap themselves stay no-store.
    """
    stream = PredictionManager.open_thumbnail(current_user(), prediction_id)
    response = Response(stream.chunks, mimetype=stream.content_type)
    response.content_length = stream.length
    response.headers["Cache-Control"] = f"private, max-age={THUMBNAIL_CACHE_SECONDS}, immutable"
    response.headers["Vary"] = "Cookie"
    return response


@bp.get("/predictions/<uuid:prediction_id>/delete")
@signed_in()
def confirm_delete(prediction_id: uuid.UUID):
    """The confirmation step before a result is deleted for good."""
    prediction = PredictionManager.get_for(current_user(), prediction_id)
    return render_template("predictions/delete.html", **result_view(prediction))


@bp.post("/predictions/<uuid:prediction_id>/delete")
@signed_in()
def delete(prediction_id: uuid.UUID):
    PredictionManager.delete(current_user(), prediction_id)
    return redirect(url_for("web_predictions.history", deleted=1), code=SEE_OTHER)


# -- history ----------------------------------------------------------------------------------


class HistoryQuerySchema(PredictionQuerySchema):
    """The history's filters and paging as the API takes them, plus paging back (before) for "Newer"."""

    before = CursorField()

    @validates_schema
    def _one_direction(self, data, **_kwargs):
        if data.get("before") is not None and data.get("cursor") is not None:
            raise ValidationError("Give either cursor or before, not both.", field_name="before")


FILTER_FIELDS = ("modality", "label", "flagged", "created_after", "created_before")


def history_query(args) -> tuple[dict, dict, dict]:
    """The history form's values, loaded through the API's schema: (query, the filters as given, errors)."""
    given = form_values(args, FILTER_FIELDS)
    values = form_values(args, ("modality", "label", "cursor", "before"))
    errors: dict[str, list[str]] = {}
    if given.get("flagged") in ("yes", "no"):
        values["is_positive"] = given["flagged"] == "yes"
    values.update(day_bounds(given, "created_after", "created_before", errors))
    query = load_filters(HistoryQuerySchema(), values, HISTORY_PAGE_SIZE, errors)
    return query, given, errors


@bp.get("/history")
@signed_in()
def history():
    query, given, errors = history_query(request.args)
    filters = PredictionFilters(
        **{name: query.get(name) for name in ("modality", "label", "is_positive", "created_after", "created_before")}
    )
    page = PredictionManager.list_for(
        current_user(), filters, 1, query["per_page"], after=query.get("cursor"), before=query.get("before")
    )
    labels = [(get_spec(m), list(get_spec(m).classes)) for m in MODALITIES]
    return render_template(
        "predictions/history.html",
        page=page,
        given=given,
        errors=errors,
        labels=labels,
        specs={m: get_spec(m) for m in MODALITIES},
        filtered=bool(given),
        deleted=request.args.get("deleted") == "1",
    )
