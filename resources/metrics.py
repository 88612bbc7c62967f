"""GET /metrics: Prometheus' scrape. Open in development; in production only with METRICS_TOKEN as the bearer."""

import hmac

from flask import Response, current_app, request
from flask.views import MethodView

from managers.monitoring import MonitoringManager
from resources.api import Blueprint
from utils.errors import NotFound, Unauthorized

blp = Blueprint("metrics", __name__, description="Prometheus metrics")


def _check_scraper() -> None:
    """Let the scrape through if metrics are open here or it brings METRICS_TOKEN; else refuse it."""
    token = current_app.config["METRICS_TOKEN"]
    if token is None:
        if not current_app.config["METRICS_OPEN"]:
            raise NotFound("The requested URL was not found on this server.")
        return
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not offered.strip():
        raise Unauthorized("A bearer token is required.", code="token_missing")
    if not hmac.compare_digest(offered.strip().encode(), token.encode()):
        raise Unauthorized("The token is not valid.", code="token_invalid")


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.response(200, content_type="text/plain", description="Prometheus text exposition format")
    @blp.alt_response(401, description="METRICS_TOKEN is set and the bearer token is missing or wrong")
    @blp.alt_response(404, description="Production without METRICS_TOKEN: metrics are off")
    def get(self):
        """Requests, latencies, predictions, gate refusals, inference times, backend errors, 429s, model versions."""
        _check_scraper()
        body, content_type = MonitoringManager.scrape()
        return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
