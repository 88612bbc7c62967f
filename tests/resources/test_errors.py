"""Whatever a client sends, it gets JSON in the one error shape with a 4xx, never a 500 or an HTML page."""

from __future__ import annotations

import io

import pytest

from constants import JSON_BODY_MAX_BYTES
from tests.resources.helpers import assert_error

# (method, path, needs a token)
JSON_ENDPOINTS = [
    ("POST", "/api/v1/auth/register", False),
    ("POST", "/api/v1/auth/login", False),
    ("POST", "/api/v1/auth/refresh", True),
    ("POST", "/api/v1/auth/logout", True),
    ("POST", "/api/v1/tokens", True),
]
ALL_AUTH_ENDPOINTS = JSON_ENDPOINTS + [
    ("GET", "/api/v1/auth/me", True),
    ("GET", "/api/v1/tokens", True),
    ("DELETE", "/api/v1/tokens/00000000-0000-0000-0000-000000000000", True),
]
ONE_MEGABYTE_JSON = '{"email": "' + "a" * (1024 * 1024) + '"}'


def headers_for(needs_token: bool, patient, path: str) -> dict:
    if not needs_token:
        return {}
    return {"Authorization": f"Bearer {patient.refresh_token if path.endswith('/refresh') else patient.access_token}"}


@pytest.mark.parametrize("method,path,needs_token", JSON_ENDPOINTS)
def test_bad_json_bodies_are_4xx_in_the_error_shape(client, patient, method, path, needs_token):
    headers = headers_for(needs_token, patient, path)
    send = lambda **kwargs: client.open(path, method=method, headers=headers, **kwargs)  # noqa: E731

    assert_error(send(data="{not json", content_type="application/json"), 400, "invalid_json")
    assert_error(send(data=b"\xff\xfe\x00", content_type="application/json"), 400, "invalid_json")
    assert_error(
        send(data="email=a&password=b", content_type="application/x-www-form-urlencoded"), 415, "unsupported_media_type"
    )
    assert_error(send(data="hello", content_type="text/plain"), 415, "unsupported_media_type")
    assert_error(send(data=ONE_MEGABYTE_JSON, content_type="application/json"), 413, "payload_too_large")
    assert_error(send(json=["a", "list"]), 422, "validation_error")
    assert_error(send(json="a string"), 422, "validation_error")
    assert_error(
        send(json={"email": 1, "password": ["x"], "name": {"a": 1}, "refresh_token": 7}), 422, "validation_error"
    )


@pytest.mark.parametrize("path", ["/api/v1/auth/register", "/api/v1/auth/login"])
def test_missing_fields_are_named_in_details(client, path):
    error = assert_error(client.post(path, json={}), 422, "validation_error")
    assert set(error["details"]) == {"email", "password"}
    error = assert_error(client.post(path), 422, "validation_error")
    assert set(error["details"]) == {"email", "password"}


def test_wrong_types_are_named_in_details(client):
    error = assert_error(client.post("/api/v1/auth/register", json={"email": "a@b.org", "password": 12345678901}), 422)
    assert error["details"]["password"] == ["Not a valid string."]
    error = assert_error(
        client.post("/api/v1/auth/register", json={"email": "not-an-email", "password": "abc12345678"}), 422
    )
    assert "email" in error["details"]


def test_unknown_fields_are_refused(client):
    error = assert_error(
        client.post("/api/v1/auth/register", json={"email": "a@b.org", "password": "abc12345678", "role": "admin"}),
        422,
    )
    assert "role" in error["details"]


@pytest.mark.parametrize("method,path,needs_token", ALL_AUTH_ENDPOINTS)
def test_every_auth_endpoint_refuses_large_bodies_as_413_json(client, patient, method, path, needs_token):
    headers = headers_for(needs_token, patient, path)
    for size in (1024 * 1024, client.application.config["MAX_CONTENT_LENGTH"] + 1):
        for content_type in ("application/json", "text/plain"):
            response = client.open(path, method=method, headers=headers, data=b"x" * size, content_type=content_type)
            assert_error(response, 413, "payload_too_large")


def test_unknown_url_is_404_json(client):
    assert_error(client.get("/no/such/page"), 404, "not_found")
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_json_with_allowed_methods(client):
    response = client.put("/api/v1/auth/login", json={})
    error = assert_error(response, 405, "method_not_allowed")
    assert "POST" in error["details"]["allowed_methods"]
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("size", [JSON_BODY_MAX_BYTES + 1, 1024 * 1024])
def test_a_chunked_body_over_the_limit_is_413_like_any_other(client, size):
    """A chunked body announces no Content-Length; the same limit holds, not a silent cut-off."""
    body = '{"email": "' + "a" * (size - 13) + '"}'
    assert len(body) == size

    def post_chunked(data: str):
        return client.post(
            "/api/v1/auth/login",
            input_stream=io.BytesIO(data.encode()),
            content_type="application/json",
            headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},  # what a server that de-chunks the body sets
        )

    error = assert_error(post_chunked(body), 413, "payload_too_large")
    assert error["details"] == {"limit_bytes": JSON_BODY_MAX_BYTES}
    assert_error(post_chunked('{"email": "a@b.org", "password": "wrong-password"}'), 401, "invalid_credentials")
