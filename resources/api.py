"""The flask-smorest Api and Blueprint as MedSight uses them: our error schema, strict JSON bodies.

Every resource module makes its blueprint with ``Blueprint`` from here, so that request bodies are
parsed the same way everywhere: a body that is not JSON where JSON is expected is a 415, before
anything is parsed (a body over JSON_BODY_MAX_BYTES is a 413 before the view runs: see create_app).
"""

from __future__ import annotations

import json
import tempfile

import flask_smorest
from flask import Blueprint as FlaskBlueprint
from flask import Flask, Request
from swagger_ui_bundle import swagger_ui_path
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from auth.openapi import BEARER_SECURITY_SCHEME
from config import PROJECT_ROOT
from schemas.errors import ErrorSchema
from utils.errors import UnsupportedMediaType

TEMP_FILES_DIR = PROJECT_ROOT / "temp_files"
SPOOL_IN_MEMORY_BYTES = 512 * 1024


class StrictJsonParser(FlaskParser):
    # "form_and_files": a multipart form with its files, as one location, for upload endpoints.
    __location_map__ = {**FlaskParser.__location_map__, "form_and_files": "load_form_and_files"}

    def load_form_and_files(self, req: Request, schema):
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)

    def _raw_load_json(self, req: Request):
        if not core.is_json(req.mimetype):
            # An empty body without a content type is "no JSON": required fields then report missing.
            if req.mimetype or req.content_length:
                raise UnsupportedMediaType(
                    "Send a JSON body with Content-Type: application/json.",
                    details={"content_type": req.mimetype or None},
                )
            return core.missing
        # Its size is settled before any view runs (create_app's limit on non-upload bodies).
        try:
            return core.parse_json(req.get_data(cache=True))
        except (RecursionError, ValueError) as error:
            if isinstance(error, json.JSONDecodeError):
                raise
            # Nesting deeper than the parser's stack, or an integer longer than Python converts
            # (4,300 digits): malformed for us like any other unreadable body, so webargs' 400 invalid_json.
            raise json.JSONDecodeError(f"Unreadable JSON: {type(error).__name__}", "(body)", 0) from error


class UploadRequest(Request):
    """Spools multipart files past SPOOL_IN_MEMORY_BYTES into temp_files/, never the system temp folder.

    The spill file is anonymous (unlinked as it is made), so temp_files/ stays empty whatever
    happens to the request, a crash of the worker included.
    """

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        TEMP_FILES_DIR.mkdir(exist_ok=True)
        return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES, dir=TEMP_FILES_DIR)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictJsonParser()
    # Documented as one multipart/form-data request body: the form fields and the files together.
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "form_and_files": "multipart/form-data",
    }

    def arguments(self, schema, **kwargs):
        """flask-smorest's arguments, refusing to wrap a view that @auth_required guards already.

        Decorators run outside-in: arguments above auth_required would parse (and read the upload
        of) an anonymous request and answer 422 where 401 is due. Put @auth_required on top.
        """
        decorate = super().arguments(schema, **kwargs)

        def decorator(view):
            if getattr(view, "medsight_auth_required", False):
                raise TypeError(f"{view.__qualname__}: put @auth_required above @blp.arguments")
            return decorate(view)

        return decorator


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *, spec_kwargs=None):
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.security_scheme("bearerAuth", BEARER_SECURITY_SCHEME)
        _serve_swagger_ui_assets(app)


def _serve_swagger_ui_assets(app: Flask) -> None:
    """Serve Swagger UI's scripts and styles from the swagger-ui-bundle package: /api/docs works offline.

    Served at OPENAPI_SWAGGER_UI_URL when that is a path on this app (the default); a full URL
    (a CDN) is left to the browser.
    """
    assets_url = app.config.get("OPENAPI_SWAGGER_UI_URL") or ""
    if not assets_url.startswith("/"):
        return
    app.register_blueprint(
        FlaskBlueprint(
            "swagger_ui_assets", __name__, static_folder=str(swagger_ui_path), static_url_path=assets_url.rstrip("/")
        )
    )
