"""What the caller's prediction endpoints (resources.predictions) and the admins' (resources.admin) share."""

from flask import Response, redirect

from managers.predictions import ImageDownload, PredictionFilters

IMAGE_KIND_DOC = (
    "kind image: the uploaded photo, in its own format; "
    "kind heatmap: the predicted class's activation map laid over the photo, a PNG"
)


def filters_from(query: dict) -> PredictionFilters:
    """The history filters from a loaded PredictionQuerySchema (or its admin variant, which adds user_id)."""
    names = ("modality", "label", "is_positive", "certainty", "created_after", "created_before", "job_id")
    return PredictionFilters(**{name: query.get(name) for name in names}, owner_id=query.get("user_id"))


def send_image(download: ImageDownload) -> Response:
    """The stored bytes with their content type, or a redirect to a short-lived storage URL."""
    if download.url is not None:
        response = redirect(download.url, code=302)
    else:
        response = Response(download.stream.chunks, mimetype=download.stream.content_type)
        response.content_length = download.stream.length
        response.headers["X-Content-Type-Options"] = "nosniff"
    # Medical images: never kept by shared caches, nor by the browser after the session.
    response.headers["Cache-Control"] = "private, no-store"
    return response
