"""/api/v1/models: the model cards of the shipped CNNs. Public: what the models are is no secret."""

from flask.views import MethodView

from managers.models import ModelManager
from resources.api import Blueprint
from schemas.models import ModelCardListSchema

blp = Blueprint("models", __name__, url_prefix="/api/v1/models", description="The models and their cards")


@blp.route("")
class Models(MethodView):
    @blp.response(200, ModelCardListSchema)
    def get(self):
        """One card per installed model: classes, input, training data, metrics, version and sha256."""
        return ModelManager.cards()
