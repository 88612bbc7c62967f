"""/health (is the process alive) and /ready (can it serve: database, storage and models)."""

from flask.views import MethodView

from managers.health import HealthManager
from resources.api import Blueprint
from schemas.health import HealthSchema, ReadinessSchema

blp = Blueprint("health", __name__, description="Liveness and readiness probes")


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, description="The models could not be loaded (code models_not_loaded)")
    def get(self):
        """Liveness: the process runs and its models are loaded; touches neither database nor storage."""
        return HealthManager.liveness()


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(
        503, description="Database, storage or models unavailable (code not_ready; details.checks says which)"
    )
    def get(self):
        """Readiness: the database answers SELECT 1, the photo storage is usable, every modality has a model."""
        return HealthManager.readiness()
