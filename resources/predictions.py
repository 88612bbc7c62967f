"""/api/v1/predictions: classify an image, the caller's history, one record, its photo and heatmap."""

import uuid

from flask.views import MethodView

from auth import auth_required, current_user, upload_rate_limited
from managers.idempotency import IdempotentUploads
from managers.predictions import ImageKind, PredictionManager
from managers.spots import SpotChoice
from resources.api import Blueprint
from resources.predictions_shared import IMAGE_KIND_DOC, filters_from, send_image
from schemas.predictions import (
    IdempotencyHeaderSchema,
    PredictionListSchema,
    PredictionQuerySchema,
    PredictionSchema,
    PredictionUploadSchema,
)

blp = Blueprint(
    "predictions",
    __name__,
    url_prefix="/api/v1/predictions",
    description="Classify medical images and keep the results in your history",
)

_NOT_YOURS = "No such prediction among the caller's (someone else's is 404 too)"
IDEMPOTENT_REPLAYED = "Idempotent-Replayed"


@blp.route("")
class Predictions(MethodView):
    @auth_required()
    @upload_rate_limited
    @blp.arguments(IdempotencyHeaderSchema, location="headers")
    @blp.arguments(PredictionUploadSchema, location="form_and_files")
    @blp.response(201, PredictionSchema)
    @blp.alt_response(
        200, schema=PredictionSchema, description="The same Idempotency-Key again within 24 h: the first prediction"
    )
    @blp.alt_response(413, description="The file is larger than MAX_UPLOAD_MB")
    @blp.alt_response(413, description="The account's storage quota is full (code storage_quota_exceeded)")
    @blp.alt_response(404, description="spot_id is not one of the caller's spots")
    @blp.alt_response(415, description="Not an accepted image format (judged by its bytes)")
    @blp.alt_response(429, description="Too many uploads from this account (UPLOAD_RATE_LIMIT): see Retry-After")
    @blp.alt_response(503, description="Storage, database or model unavailable; nothing was kept")
    def post(self, headers, form):
        """Classify an uploaded image and keep it in the caller's history (once per Idempotency-Key)."""
        spot = SpotChoice(form["spot"], form["spot_id"], form["body_site"])
        prediction, replayed = IdempotentUploads.create(
            current_user(), form["modality"], form["upload"].stream, form["note"], headers["idempotency_key"], spot
        )
        return (prediction, 200, {IDEMPOTENT_REPLAYED: "true"}) if replayed else prediction

    @auth_required()
    @blp.arguments(PredictionQuerySchema, location="query")
    @blp.response(200, PredictionListSchema)
    def get(self, query):
        """The caller's predictions, newest first, filtered and paged."""
        return PredictionManager.list_for(
            current_user(), filters_from(query), query["page"], query["per_page"], after=query.get("cursor")
        )


@blp.route("/<uuid:prediction_id>")
class Prediction(MethodView):
    @auth_required()
    @blp.response(200, PredictionSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    def get(self, prediction_id: uuid.UUID):
        """One of the caller's predictions."""
        return PredictionManager.get_for(current_user(), prediction_id)

    @auth_required()
    @blp.response(204)
    @blp.alt_response(404, description=_NOT_YOURS)
    @blp.alt_response(503, description="Storage or database unavailable; the record is kept whole")
    def delete(self, prediction_id: uuid.UUID):
        """Delete one of the caller's predictions with its photo and heatmap."""
        PredictionManager.delete(current_user(), prediction_id)


@blp.route("/<uuid:prediction_id>/<any(image, heatmap):kind>")
class PredictionImage(MethodView):
    @auth_required()
    @blp.response(200, content_type="image/*", description=IMAGE_KIND_DOC)
    @blp.alt_response(302, description="Redirect to a short-lived URL of the file in object storage")
    @blp.alt_response(404, description=_NOT_YOURS)
    def get(self, prediction_id: uuid.UUID, kind: ImageKind):
        """The photo that was classified (image), or where the model looked (heatmap)."""
        return send_image(PredictionManager.open_image(current_user(), prediction_id, kind))
