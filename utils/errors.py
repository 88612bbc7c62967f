"""The one error family and the one handler that turns every failure into the same JSON shape.

Every error a client sees is ``{"error": {"code": ..., "message": ..., "details": {...}, "request_id": ...}}`` with
the matching HTTP status: our domain errors, Flask/werkzeug's own (404, 405, 413, ...), webargs and
marshmallow validation errors, flask-jwt-extended's token errors, a database that is down, and
anything unexpected (500, logged with its traceback, never sent to the client).

Browser pages get the same errors as HTML pages instead: the web layer registers a renderer under
``app.extensions[HTML_ERROR_PAGE]`` and the names of its blueprints under
``app.extensions[WEB_BLUEPRINTS]``. A request to one of those blueprints is answered with a page;
the API (/api/, /predict, /health, /ready) always with JSON; any other URL (an unknown one) by what
the client accepts, JSON unless it prefers text/html.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, has_request_context, jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from utils.request_log import note_error_code, request_id

log = logging.getLogger(__name__)


class AppError(Exception):
    """A failure with a stable machine-readable code, an HTTP status and a human message."""

    status: int = 500
    code: str = "internal_error"
    message: str = "Something went wrong on our side."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = dict(details or {})
        self.code = code or self.code
        self.headers = dict(headers or {})
        super().__init__(self.message)


class Unauthorized(AppError):
    status, code, message = 401, "unauthorized", "Authentication is required."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class AccountDisabled(Unauthorized):
    code, message = "account_disabled", "This account is disabled or no longer exists."


class Forbidden(AppError):
    status, code, message = 403, "forbidden", "You are not allowed to do this."


class NotFound(AppError):
    status, code, message = 404, "not_found", "The requested resource was not found."


class Conflict(AppError):
    status, code, message = 409, "conflict", "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    status, code, message = 413, "payload_too_large", "The request body is too large."


class StorageQuotaExceeded(PayloadTooLarge):
    code, message = "storage_quota_exceeded", "This account's storage quota is full."


class UnsupportedMediaType(AppError):
    status, code, message = 415, "unsupported_media_type", "The request body has an unsupported content type."


class ValidationFailed(AppError):
    status, code, message = 422, "validation_error", "The request contains invalid data."


class TooManyRequests(AppError):
    status, code, message = 429, "too_many_requests", "Too many requests from this client; try again later."


class ServiceUnavailable(AppError):
    status, code, message = 503, "service_unavailable", "The service is temporarily unavailable."


class StorageUnavailable(ServiceUnavailable):
    code, message = "storage_unavailable", "Photo storage is not available right now."


class DatabaseUnavailable(ServiceUnavailable):
    code, message = "database_unavailable", "The database is not available right now."


class ModelUnavailable(ServiceUnavailable):
    code, message = "model_unavailable", "The model for this kind of image is not available right now."


class EmptyFile(ValidationFailed):
    code, message = "empty_file", "The uploaded file is empty."


class InvalidImage(ValidationFailed):
    code, message = "invalid_image", "The file could not be decoded as an image."


class ImageTooLarge(ValidationFailed):
    code, message = "image_too_large", "The image has too many pixels."


class ImageQuality(ValidationFailed):
    code, message = "image_quality", "The image is not clear enough for the model to read; please retake it."


class NotAMedicalImage(ValidationFailed):
    code, message = "not_a_medical_image", "The image is none of the kinds of medical image MedSight reads."


class ModalityMismatch(ValidationFailed):
    code, message = "modality_mismatch", "The image does not look like the kind of image that was named."


class InvalidArchive(ValidationFailed):
    code, message = "invalid_archive", "The archive cannot be accepted."


class ArchiveTooLarge(AppError):
    status, code, message = 413, "archive_too_large", "The archive is larger than a job may be."


class TooManyJobs(AppError):
    status, code, message = 429, "too_many_jobs", "This account has as many jobs running as it may."


class QueueUnavailable(ServiceUnavailable):
    code, message = "queue_unavailable", "The job queue is not available right now."


class PacsUnavailable(ServiceUnavailable):
    code, message = "pacs_unavailable", "The PACS (DICOMweb) is not available right now."


class PacsNotConfigured(Conflict):
    code, message = "pacs_not_configured", "No PACS is configured here (DICOMWEB_URL is not set)."


class StudyNotFound(ValidationFailed):
    code, message = "study_not_found", "The PACS has no chest X-ray instances in this study."


class NotAClinician(ValidationFailed):
    # The same answer for an address with no account and one of a patient or admin: nothing tells which.
    code, message = (
        "not_a_clinician",
        ("Results can be shared only with a clinician's MedSight account. Check the address with your clinician."),
    )


class LinkGone(AppError):
    status, code, message = 410, "link_gone", "This link is no longer valid."


# Codes for werkzeug's HTTP errors; anything not listed gets its name in snake_case.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}
# Werkzeug's descriptions are written for HTML pages; these read better in an API.
_HTTP_MESSAGES = {
    404: "The requested URL was not found on this server.",
    405: "The method is not allowed for this URL.",
    413: "The request body is too large.",
    422: "The request contains invalid data.",
    429: "Too many requests from this client; try again later.",
}
_WEBARGS_LOCATIONS = {
    "json",
    "form",
    "query",
    "querystring",
    "files",
    "form_and_files",
    "headers",
    "cookies",
    "view_args",
    "path",
}


HTML_ERROR_PAGE = "medsight.html_error_page"  # callable(status, code, message, details) -> response
WEB_BLUEPRINTS = "medsight.web_blueprints"  # names of the blueprints that serve browser pages
_JSON_PREFIXES = ("/api/", "/predict/", "/health/", "/ready/")
_JSON_PATHS = ("/api", "/predict", "/health", "/ready")


def _wants_html_page() -> bool:
    """Whether this request's error should be an HTML page (a browser page) rather than the JSON body."""
    if not has_request_context() or HTML_ERROR_PAGE not in current_app.extensions:
        return False
    if request.blueprint is not None and request.blueprint in current_app.extensions.get(WEB_BLUEPRINTS, ()):
        return True
    if request.path in _JSON_PATHS or request.path.startswith(_JSON_PREFIXES):
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
):
    """The one error body, as a Flask response tuple: JSON, or the error page for browser pages."""
    note_error_code(code)
    if _wants_html_page():
        response = current_app.extensions[HTML_ERROR_PAGE](status, code, message, dict(details or {}))
        return response, status, {k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"}
    body = {"error": {"code": code, "message": message, "details": dict(details or {}), "request_id": request_id()}}
    return jsonify(body), status, dict(headers or {})


def flatten_validation_messages(messages: Any) -> dict[str, Any]:
    """Field -> messages, with webargs' location level ("json", "form", ...) folded away."""
    if not isinstance(messages, Mapping):
        return {"_schema": messages if isinstance(messages, list) else [str(messages)]}
    if not messages or not set(messages) <= _WEBARGS_LOCATIONS:
        return dict(messages)
    flat: dict[str, Any] = {}
    for location_messages in messages.values():
        for field, field_messages in flatten_validation_messages(location_messages).items():
            if field in flat and isinstance(flat[field], list) and isinstance(field_messages, list):
                flat[field] = flat[field] + field_messages
            else:
                flat[field] = field_messages
    return flat


def _handle_app_error(error: AppError):
    return error_response(error.status, error.code, error.message, error.details, error.headers)


def _handle_http_exception(error: HTTPException):
    status = error.code or 500
    code = _HTTP_CODES.get(status) or (error.name or "error").lower().replace(" ", "_").replace("'", "")
    message = _HTTP_MESSAGES.get(status) or error.description or error.name
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    data = getattr(error, "data", None) or {}
    # flask-smorest/webargs' abort() carries the validation messages and extra headers in .data.
    if "messages" in data or "errors" in data:
        details = flatten_validation_messages(data.get("errors", data.get("messages")))
        if status == 400 and "json" in (data.get("messages") or {}):
            code, message = "invalid_json", "The request body is not valid JSON."
    if data.get("message"):
        message = str(data["message"])
    if data.get("headers"):
        headers.update(data["headers"])
    if status == 429 and getattr(error, "limit", None) is not None:
        details["limit"] = str(error.limit.limit)  # flask-limiter's refusal: which limit was hit
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        details["allowed_methods"] = sorted(valid_methods)
    response_headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
    response_headers.update(headers)
    return error_response(status, code, message, details, response_headers)


def _handle_marshmallow_error(error: ValidationError):
    return error_response(
        422, "validation_error", "The request contains invalid data.", flatten_validation_messages(error.messages)
    )


def _handle_database_error(error: DBAPIError):
    sqlalchemy_ext = current_app.extensions.get("sqlalchemy")
    if sqlalchemy_ext is not None:  # leave the session usable for whatever runs next
        sqlalchemy_ext.session.rollback()
    log.error("database unavailable: %s", error.orig if error.orig is not None else error)
    return _handle_app_error(DatabaseUnavailable())


def _handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return _handle_http_exception(error)
    log.exception("unhandled error")
    return error_response(500, "internal_error", "Something went wrong on our side.")


def _register_jwt_error_responses(app: Flask) -> None:
    """Make flask-jwt-extended's token errors speak our shape (it answers them with its own handlers)."""
    jwt = app.extensions.get("flask-jwt-extended")
    if jwt is None:
        return
    bearer = {"WWW-Authenticate": "Bearer"}

    @jwt.unauthorized_loader
    def _missing(reason: str):
        return error_response(401, "token_missing", "A bearer token is required.", {"reason": reason}, bearer)

    @jwt.invalid_token_loader
    def _invalid(reason: str):
        return error_response(401, "token_invalid", "The token is not valid.", {"reason": reason}, bearer)

    @jwt.expired_token_loader
    def _expired(_header: dict, _payload: dict):
        return error_response(401, "token_expired", "The token has expired.", None, bearer)

    @jwt.revoked_token_loader
    def _revoked(_header: dict, _payload: dict):
        return error_response(401, "token_revoked", "The token has been revoked.", None, bearer)

    @jwt.needs_fresh_token_loader
    def _needs_fresh(_header: dict, _payload: dict):
        return error_response(401, "fresh_token_required", "Log in again to do this.", None, bearer)

    @jwt.token_verification_failed_loader
    def _verification_failed(_header: dict, _payload: dict):
        return error_response(401, "token_invalid", "The token is not valid.", None, bearer)

    @jwt.user_lookup_error_loader
    def _user_gone(_header: dict, _payload: dict):
        return error_response(401, "account_disabled", "This account is disabled or no longer exists.", None, bearer)


def register_error_handlers(app: Flask) -> None:
    """Install the one error shape on app. Call after the Api and JWTManager are bound (it replaces theirs)."""
    app.register_error_handler(AppError, _handle_app_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(ValidationError, _handle_marshmallow_error)
    app.register_error_handler(OperationalError, _handle_database_error)
    app.register_error_handler(Exception, _handle_unexpected)
    _register_jwt_error_responses(app)
