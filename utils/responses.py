"""Responses both HTTP layers send: a report PDF, a stored image's bytes, a document for a hospital's systems, a
share link's URL."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response, url_for

SHARE_LINK_ENDPOINT = "web_care.shared"


def pdf_response(data: bytes, prediction_id: uuid.UUID | None = None) -> Response:
    """A report PDF, shown in the browser, never cached."""
    name = f"medsight-report-{prediction_id}.pdf" if prediction_id else "medsight-report.pdf"
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def stream_response(stream: Any) -> Response:
    """A stored object's bytes (an ObjectStream) as storage gives them; never cached, never sniffed."""
    response = Response(stream.chunks, mimetype=stream.content_type)
    response.content_length = stream.length
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def document_response(data: bytes | dict, content_type: str, filename: str) -> Response:
    """A document for a hospital's systems (DICOM SR, its image, a FHIR Bundle) as a download, never cached."""
    body = json.dumps(data, ensure_ascii=False) if isinstance(data, dict) else data
    response = Response(body, mimetype=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def share_link_url(token: str) -> str:
    """The absolute address a share link's token opens (the page is in views/care.py)."""
    return url_for(SHARE_LINK_ENDPOINT, token=token, _external=True)
