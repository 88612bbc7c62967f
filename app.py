"""MedSight: the application factory, and `python app.py` for the development server."""

from __future__ import annotations

import os
from pathlib import Path

import flask_migrate
from flask import Flask, request
from flask.helpers import get_debug_flag
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from werkzeug import serving
from werkzeug.middleware.proxy_fix import ProxyFix

from auth import configure_jwt, init_rate_limits
from config import PROJECT_ROOT, BaseConfig, config_for_environment
from constants import JSON_BODY_MAX_BYTES
from db import db, migrate
from managers.audit import reset_client_ip, set_client_ip
from managers.models import ModelManager
from managers.upload_quota import KnownUsage
from resources import register_resources
from resources.api import Api, UploadRequest
from services.counters import create_counters
from services.storage import create_storage
from services.telemetry import init_request_telemetry
from services.token_cache import create_token_cache
from utils.errors import PayloadTooLarge, register_error_handlers
from utils.static_files import init_static_files
from views import register_views
from workers import init_jobs

MIGRATIONS_DIR = str(PROJECT_ROOT / "migrations")
# What the Server header says, with no framework or version in it.
SERVER_HEADER = "MedSight"
# Werkzeug's development server (flask run, python app.py) writes its own Server header, naming itself,
# its version and Python's: it says ours instead, and refuses what it cannot parse (a request line over
# 65,536 bytes, over 100 headers) in our error shape, not an HTML page. gunicorn: see gunicorn.conf.py.
serving.WSGIRequestHandler.version_string = lambda _handler: SERVER_HEADER
serving.WSGIRequestHandler.error_content_type = "application/json"
serving.WSGIRequestHandler.error_message_format = (
    '{"error": {"code": "request_rejected", "message": "The server refused the request (HTTP %(code)d).", '
    '"details": {"status": %(code)d}}}'
)
INSTANCE_PATH_ENV = "MEDSIGHT_INSTANCE_PATH"


def create_app(
    config_object: BaseConfig | type[BaseConfig] | None = None, *, instance_path: str | os.PathLike | None = None
) -> Flask:
    """Build a MedSight app.

    config_object: None picks the class MEDSIGHT_ENV names (development by default) and reads the
    environment; a config class is built from the environment; a config instance is used as is.
    instance_path: where the embedded database, photos and dev secret live (default: ./instance,
    or $MEDSIGHT_INSTANCE_PATH).
    """
    instance_path = instance_path or os.environ.get(INSTANCE_PATH_ENV) or None
    app = Flask(__name__, instance_path=str(Path(instance_path).resolve()) if instance_path else None)
    app.request_class = UploadRequest
    if config_object is None:
        config = config_for_environment(os.environ, app.instance_path)
    elif isinstance(config_object, type):
        config = config_object(os.environ, app.instance_path)
    else:
        config = config_object
    app.config.from_object(config)
    app.config["MEDSIGHT_ENV"] = config.NAME
    app.json.sort_keys = False

    init_request_telemetry(app)  # first: its clock and request id cover every other hook

    if app.config.get("TRUSTED_PROXIES"):
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    configure_jwt(JWTManager(app))
    init_rate_limits(app)
    api = Api(app)
    register_resources(app, api)
    register_views(app)
    init_static_files(app)
    register_error_handlers(app)
    app.extensions["storage"] = create_storage(app.config)
    app.extensions["counters"] = create_counters(app.config)
    app.extensions["token_cache"] = create_token_cache(app.config, app.instance_path)
    app.extensions["known_usage"] = KnownUsage()
    init_jobs(app)
    ModelManager.init_app(app)
    _track_client_ip(app)
    _limit_non_upload_bodies(app)
    _secure_responses(app)
    _allow_cross_origin_api_calls(app)

    if app.config["AUTO_MIGRATE"]:
        with app.app_context():
            flask_migrate.upgrade(directory=MIGRATIONS_DIR)
    return app


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
# Swagger UI's page starts itself with an inline script and inline styles.
SWAGGER_UI_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
# Public and never personal: static assets (their Cache-Control: utils/static_files.py), and the model cards' figures.
CACHEABLE_ENDPOINTS = frozenset({"static", "swagger_ui_assets.static", "web_models.plot"})


def _secure_responses(app: Flask) -> None:
    """One hook for every response's security headers; anything not public is never stored by a cache."""
    swagger_ui_path = "/" + app.config["OPENAPI_SWAGGER_UI_PATH"].strip("/")

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        csp = SWAGGER_UI_CONTENT_SECURITY_POLICY if request.path == swagger_ui_path else CONTENT_SECURITY_POLICY
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint not in CACHEABLE_ENDPOINTS:
            headers.setdefault("Cache-Control", "no-store")
        return response


# What a browser app on another origin may send to the API and read from its answers.
CORS_ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Request-ID"]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "Content-Disposition", "Location"]


def _allow_cross_origin_api_calls(app: Flask) -> None:
    """CORS for the origins CORS_ORIGINS lists, on the API only (/api/..., /predict), never with cookies.

    The API takes bearer tokens, not cookies, so no Access-Control-Allow-Credentials is ever sent: a
    page on another origin can call it with a token it holds, and never with a signed-in browser's session.
    """
    origins = list(app.config["CORS_ORIGINS"])
    if not origins:
        return
    policy = {"origins": origins}
    CORS(
        app,
        resources={r"/api/.*": policy, r"/predict": policy},
        supports_credentials=False,
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=600,
    )


def _limit_non_upload_bodies(app: Flask) -> None:
    """Only multipart uploads may be large; any other body over JSON_BODY_MAX_BYTES is a 413, read or not."""

    @app.before_request
    def _refuse_oversized_body() -> None:
        if request.mimetype == "multipart/form-data":
            return
        size = request.content_length
        if size is None:
            # A chunked body announces no size: read it now, at most one byte past the limit (werkzeug
            # would cut it off at the limit without a word), and keep it for the parser.
            request.max_content_length = JSON_BODY_MAX_BYTES + 1
            size = len(request.get_data(cache=True))
        if size > JSON_BODY_MAX_BYTES:
            raise PayloadTooLarge(
                f"Request bodies other than file uploads are limited to {JSON_BODY_MAX_BYTES // 1024} KiB.",
                details={"limit_bytes": JSON_BODY_MAX_BYTES},
            )


def _track_client_ip(app: Flask) -> None:
    """Hand the caller's address to the audit trail for the length of each request."""

    @app.before_request
    def _remember_client_ip() -> None:
        request.environ["medsight.client_ip_token"] = set_client_ip(request.remote_addr)

    @app.teardown_request
    def _forget_client_ip(_exc: BaseException | None) -> None:
        token = request.environ.pop("medsight.client_ip_token", None)
        if token is not None:
            try:
                reset_client_ip(token)
            except ValueError:
                set_client_ip(None)  # torn down in another context than it was set in


def main() -> None:
    """`python app.py`: the development server; Werkzeug's interactive debugger only with FLASK_DEBUG=1."""
    # The debugger runs code typed into an error page: never on unless asked for, whatever the config says.
    create_app().run(
        host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), debug=get_debug_flag()
    )


if __name__ == "__main__":
    main()
