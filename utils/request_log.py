"""The request id of every request, and the JSON log lines that carry it (services.telemetry writes the
request's own line and metrics).

Every request gets an id: the client's X-Request-ID when it is well-formed (so a proxy's or a
client's id follows the request through), else a fresh one. It is sent back in X-Request-ID on every
response, put in every error body (utils.errors), and carried by every log line written while the
request runs. Logs go to stderr as JSON, one object a line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# Ids a client may choose: short, and only characters that cannot forge a log line or a header.
_WELL_FORMED_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*m")  # colours some libraries put in their messages (werkzeug's banner)


def request_id() -> str | None:
    """The current request's id (made on first use), or None outside a request."""
    if not has_request_context():
        return None
    rid = g.get("medsight_request_id")
    if rid is None:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        rid = offered if _WELL_FORMED_REQUEST_ID.match(offered) else uuid.uuid4().hex
        g.medsight_request_id = rid
    return rid


def note_error_code(code: str) -> None:
    """Remember the error code the request is answered with, for its metrics (utils.errors calls this)."""
    if has_request_context():
        g.medsight_error_code = code


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and the request's fields."""

    REQUEST_FIELDS = ("method", "route", "status", "duration_ms", "user_id")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _TERMINAL_CODES.sub("", record.getMessage()),
            "request_id": getattr(record, "request_id", None),
        }
        for name in self.REQUEST_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (None outside a request) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id()
        return True


class _DropServerAccessLines(logging.Filter):
    """werkzeug's development server logs each request with its full path and query string: ours replaces it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return " - - [" not in record.getMessage()


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it).

    Public so that gunicorn.conf.py's logconfig_dict can install it for gunicorn's own lines: the app's
    configure_logging then finds it on the root logger and adds no second one.
    """

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for every logger, each with the request id; idempotent (one handler, however
    many apps a process builds)."""
    root = logging.getLogger()
    if not any(isinstance(handler, StderrHandler) for handler in root.handlers):
        handler = StderrHandler()
        handler.setFormatter(JsonLogFormatter())
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, _DropServerAccessLines) for f in werkzeug_log.filters):
        werkzeug_log.addFilter(_DropServerAccessLines())
