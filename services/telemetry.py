"""Request telemetry: each request's id sent back, its JSON log line and its metrics, bound to the app.

The request line holds the method, the route template (never the path with its ids, nor the query
string), the status, the duration and the user's id: no emails, tokens, file names or image bytes.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from sqlalchemy import inspect as sa_inspect

from services import metrics
from utils.request_log import REQUEST_ID_HEADER, configure_logging, request_id

UNMATCHED_ROUTE = "<unmatched>"  # 404s: the path itself would let anyone mint new series and log lines
request_log = logging.getLogger("medsight.request")


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE


def _user_id() -> str | None:
    user = g.get("medsight_user")
    if user is None:
        return None
    # From the session's identity map: reading user.id would reload the row, gone if the account was
    # deleted while this request ran.
    identity = sa_inspect(user).identity
    return str(identity[0]) if identity else None


def init_request_telemetry(app: Flask) -> None:
    """Bind the request id, the request log line and the request metrics to app.

    Call first in create_app: a before_request hook registered earlier could refuse a request
    before its clock starts.
    """
    configure_logging()

    @app.before_request
    def _start_request() -> None:
        g.medsight_request_started = time.perf_counter()
        request_id()

    @app.after_request
    def _finish_request(response: Response) -> Response:
        rid = request_id()
        response.headers[REQUEST_ID_HEADER] = rid
        started = g.pop("medsight_request_started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        route = _route()
        metrics.observe_request(request.method, route, response.status_code, seconds, g.get("medsight_error_code"))
        request_log.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "user_id": _user_id(),
            },
        )
        return response
