"""POST /predict: the endpoint the original single-model apps offered, kept for their clients."""

from flask import current_app
from flask.views import MethodView

from auth import auth_required, current_user
from managers.predictions import PredictionManager
from resources.api import Blueprint
from schemas.predictions import SeedPredictionSchema, SeedQuerySchema, SeedUploadSchema

blp = Blueprint("seed", __name__, description="Compatibility with the original apps' POST /predict")


@blp.route("/predict")
class SeedPredict(MethodView):
    @auth_required()
    @blp.arguments(SeedQuerySchema, location="query")
    @blp.arguments(SeedUploadSchema, location="form_and_files")
    @blp.response(200, SeedPredictionSchema)
    def post(self, query, form):
        """Classify an image the old way (modality from the form, the query, or DEFAULT_MODALITY); kept in history."""
        modality = form["modality"] or query["modality"] or current_app.config["DEFAULT_MODALITY"]
        return PredictionManager.create(current_user(), modality, form["upload"].stream)
