"""POST /predict: the endpoint the original single-model apps offered, kept in their shape for their clients."""

from flask import current_app
from flask.views import MethodView

from auth import auth_required, current_user
from managers.predictions import PredictionManager
from resources.api import Blueprint
from schemas.legacy import LegacyPredictionSchema, LegacyQuerySchema, LegacyUploadSchema

blp = Blueprint("legacy", __name__, description="Compatibility with the original apps' POST /predict")


@blp.route("/predict")
class LegacyPredict(MethodView):
    @auth_required()
    @blp.arguments(LegacyQuerySchema, location="query")
    @blp.arguments(LegacyUploadSchema, location="form_and_files")
    @blp.response(200, LegacyPredictionSchema)
    def post(self, query, form):
        """Classify an image the old way (modality from the form, the query, or DEFAULT_MODALITY); kept in history."""
        modality = form["modality"] or query["modality"] or current_app.config["DEFAULT_MODALITY"]
        return PredictionManager.create(current_user(), modality, form["upload"].stream)
