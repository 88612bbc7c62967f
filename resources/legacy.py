"""POST /predict: the endpoint the original single-model apps offered, kept in their shape for their clients.

Clients send only a file; the modality gate picks the model (or the form/query `modality`, or the
DEFAULT_MODALITY setting, names it). SEED_PREDICT_SHAPE=label answers the pneumonia app's
{"prediction": "<finding>"} instead of the skin app's shape. With ANONYMOUS_PREDICT=true a request
without a token is classified, not stored, and limited per client address.
"""

from dataclasses import dataclass

from flask import current_app, jsonify, request
from flask.views import MethodView

from auth import auth_required, current_user_or_none, limiter, upload_rate_limited
from cnn_model.modalities import get_spec
from managers.predictions import PredictionManager
from resources.api import Blueprint
from schemas.legacy import LegacyPredictionSchema, LegacyQuerySchema, LegacyUploadSchema
from schemas.predictions import auto_to_none

blp = Blueprint("legacy", __name__, description="Compatibility with the original apps' POST /predict")


def _anonymous_allowed() -> bool:
    return current_app.config["ANONYMOUS_PREDICT"]


def _not_anonymous() -> bool:
    """Exempt from the anonymous limit: a request with credentials, or any request where anonymous use is off."""
    return not _anonymous_allowed() or "Authorization" in request.headers


@dataclass(frozen=True)
class _Unstored:
    """An anonymous classification, shaped like a stored row for the answer's schema."""

    modality: str
    modality_detected: bool
    label: str
    confidence: float
    probabilities: dict
    is_positive: bool
    prediction_set: tuple[str, ...] | None
    set_coverage: float | None
    certainty: str | None


@blp.route("/predict")
class LegacyPredict(MethodView):
    # Checked before the view reads anything: only anonymous requests count against this limit.
    decorators = [limiter.limit(lambda: current_app.config["ANONYMOUS_PREDICT_RATE"], exempt_when=_not_anonymous)]

    @auth_required(anonymous=_anonymous_allowed)
    @upload_rate_limited
    @blp.arguments(LegacyQuerySchema, location="query")
    @blp.arguments(LegacyUploadSchema, location="form_and_files")
    @blp.response(200, LegacyPredictionSchema)
    @blp.alt_response(422, description="Not a medical image of ours (not_a_medical_image), or not of the named kind")
    @blp.alt_response(413, description="The account's storage quota is full (code storage_quota_exceeded)")
    @blp.alt_response(
        429, description="Too many uploads from this account, or (anonymous use) from this address: see Retry-After"
    )
    def post(self, query, form):
        """Classify an image the old way; kept in the caller's history (with a token) or not kept (anonymous)."""
        modality = (
            auto_to_none(form["modality"]) or query["modality"] or auto_to_none(current_app.config["DEFAULT_MODALITY"])
        )
        user = current_user_or_none()
        if user is None:
            result, detected = PredictionManager.classify(modality, form["upload"].stream)
            answer = _Unstored(
                result.modality,
                detected,
                result.label,
                result.confidence,
                result.probabilities,
                result.is_positive,
                result.prediction_set,
                result.set_coverage,
                result.certainty,
            )
        else:
            answer = PredictionManager.create(user, modality, form["upload"].stream)
        if current_app.config["SEED_PREDICT_SHAPE"] == "label":
            # The pneumonia app's answer: the finding alone, in plain words.
            return jsonify({"prediction": get_spec(answer.modality).class_spec(answer.label).display_name})
        return answer
