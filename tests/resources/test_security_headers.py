"""Every response carries the security headers, names no server version, and nothing personal is cached."""

from __future__ import annotations

import io
import threading
import urllib.error
import urllib.request

import pytest
from werkzeug.serving import make_server

from app import SERVER_HEADER
from tests.resources.helpers import bearer
from tests.support.images import sample_image

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")


def _assert_secured(response, what: str) -> None:
    for name in SECURITY_HEADERS:
        assert response.headers.get(name), (what, name, dict(response.headers))
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], what
    assert response.headers["X-Content-Type-Options"] == "nosniff", what
    assert response.headers["X-Frame-Options"] == "DENY", what
    assert response.headers.get("Server", SERVER_HEADER) == SERVER_HEADER, what


def _assert_not_stored(response, what: str) -> None:
    assert "no-store" in response.headers.get("Cache-Control", ""), (what, response.headers.get("Cache-Control"))


@pytest.fixture
def uploaded(client, patient) -> str:
    data = sample_image("skin_lesion").read_bytes()
    response = client.post(
        "/api/v1/predictions",
        data={"modality": "skin_lesion", "file": (io.BytesIO(data), "a.jpg")},
        headers=patient.headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_every_kind_of_api_response_is_secured_and_personal_ones_are_not_stored(client, patient, uploaded):
    token = client.post("/api/v1/tokens", json={"name": "h"}, headers=patient.headers)
    personal = {
        "login": client.post("/api/v1/auth/login", json={"email": patient.email, "password": patient.password}),
        "refresh": client.post("/api/v1/auth/refresh", headers=bearer(patient.refresh_token)),
        "token creation": token,
        "token list": client.get("/api/v1/tokens", headers=patient.headers),
        "me": client.get("/api/v1/auth/me", headers=patient.headers),
        "history": client.get("/api/v1/predictions", headers=patient.headers),
        "prediction": client.get(f"/api/v1/predictions/{uploaded}", headers=patient.headers),
        "photo": client.get(f"/api/v1/predictions/{uploaded}/image", headers=patient.headers),
        "heatmap": client.get(f"/api/v1/predictions/{uploaded}/heatmap", headers=patient.headers),
        "upload refused": client.post("/api/v1/predictions", data={}, headers=patient.headers),
        "wrong password": client.post("/api/v1/auth/login", json={"email": patient.email, "password": "nope-nope-1"}),
    }
    other = {
        "health": client.get("/health"),
        "openapi": client.get("/api/v1/openapi.json"),
        "docs": client.get("/api/docs"),
        "models": client.get("/api/v1/models"),
        "unknown url": client.get("/api/v1/nothing-here"),
        "wrong method": client.put("/api/v1/auth/login"),
        "options": client.options("/api/v1/predictions"),
        "head": client.head("/health"),
        "too large": client.post("/api/v1/auth/login", data="x" * 70_000, content_type="application/json"),
        "bad json": client.post("/api/v1/auth/login", data="{", content_type="application/json"),
        "no token": client.get("/api/v1/predictions"),
        "static": client.get("/static/favicon.svg"),
    }
    for what, response in {**personal, **other}.items():
        assert response.status_code < 500, (what, response.status_code)
        _assert_secured(response, what)
    for what, response in personal.items():
        _assert_not_stored(response, what)


def test_a_rate_limited_answer_is_secured_too(client, app):
    for _ in range(int(app.config["AUTH_ACCOUNT_RATE_LIMIT"].split()[0]) + 1):
        response = client.post("/api/v1/auth/register", json={"email": "same@example.org", "password": "x"})
    assert response.status_code == 429
    _assert_secured(response, "429")
    assert response.headers["Retry-After"]


def test_the_development_server_does_not_name_itself_or_its_version(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
            servers = response.headers.get_all("Server")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/api/v1/nothing", timeout=10)
        missing_servers = missing.value.headers.get_all("Server")
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert servers == [SERVER_HEADER] and missing_servers == [SERVER_HEADER], (servers, missing_servers)


def test_gunicorn_is_told_our_name(monkeypatch, tmp_path):
    import runpy

    import gunicorn.http.wsgi

    from config import PROJECT_ROOT

    monkeypatch.setattr(gunicorn.http.wsgi, "SERVER", gunicorn.http.wsgi.SERVER)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the settings file would make a folder
    runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    assert gunicorn.http.wsgi.SERVER == SERVER_HEADER


def _raw_http(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


def test_the_development_server_refuses_unreadable_requests_in_our_shape(app):
    import json

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        too_long = _raw_http(server.server_port, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        too_many = _raw_http(server.server_port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 150 + b"\r\n")
    finally:
        server.shutdown()
        thread.join(timeout=10)
    for status, headers, body in (too_long, too_many):
        assert status.split()[1] in ("414", "431"), status
        assert headers["content-type"].startswith("application/json") and headers["server"] == SERVER_HEADER
        assert json.loads(body)["error"]["code"] == "request_rejected"


def test_gunicorns_own_refusals_are_in_our_shape(monkeypatch, tmp_path):
    import json
    import runpy
    import socket

    import gunicorn.http.wsgi
    import gunicorn.util

    from config import PROJECT_ROOT

    monkeypatch.setattr(gunicorn.http.wsgi, "SERVER", gunicorn.http.wsgi.SERVER)
    monkeypatch.setattr(gunicorn.util, "write_error", gunicorn.util.write_error)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    ours, theirs = socket.socketpair()
    with ours, theirs:
        gunicorn.util.write_error(ours, 431, "Request Header Fields Too Large", "Error parsing headers: 'limit'")
        ours.close()
        received = b""
        while chunk := theirs.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ") and b"Content-Type: application/json" in head
    assert b"Server: MedSight" in head
    error = json.loads(body)["error"]
    assert error["code"] == "request_header_fields_too_large" and set(error) == {"code", "message", "details"}
