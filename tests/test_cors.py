"""CORS: off unless CORS_ORIGINS lists origins; then for those origins, on API paths only, never with credentials."""

from __future__ import annotations

import pytest

from config import ConfigError, TestingConfig

ALLOWED = "https://viewer.example.org"


@pytest.fixture
def cors_client(build_app):
    return build_app(CORS_ORIGINS=f"{ALLOWED}, https://other.example.net/").test_client()


def preflight(client, path: str, origin: str, method: str = "POST"):
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    return client.options(path, headers=headers)


def test_off_by_default(client):
    response = client.get("/api/v1/models", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in preflight(client, "/api/v1/predictions", ALLOWED).headers


def test_a_listed_origin_may_call_the_api_without_credentials(cors_client):
    response = cors_client.get("/api/v1/models", headers={"Origin": ALLOWED, "X-Request-ID": "cors-request-0001"})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers.get("Vary", "")


def test_the_preflight_allows_the_bearer_header_and_json(cors_client):
    response = preflight(cors_client, "/api/v1/predictions", ALLOWED)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert preflight(cors_client, "/predict", ALLOWED).headers["Access-Control-Allow-Origin"] == ALLOWED


def test_an_unlisted_origin_gets_no_cors_headers(cors_client):
    response = cors_client.get("/api/v1/models", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in preflight(cors_client, "/api/v1/me", "https://evil.example.com").headers


@pytest.mark.parametrize("path", ["/", "/login", "/account", "/metrics", "/health"])
def test_pages_and_probes_never_get_cors_headers(cors_client, path):
    assert "Access-Control-Allow-Origin" not in cors_client.get(path, headers={"Origin": ALLOWED}).headers


@pytest.mark.parametrize("value", ["*", "viewer.example.org", "https://viewer.example.org/app", "ftp://x.example"])
def test_anything_but_exact_origins_is_a_configuration_error(tmp_path, value):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        TestingConfig({"CORS_ORIGINS": value}, tmp_path)
