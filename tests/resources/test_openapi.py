"""The OpenAPI document: valid, and in step with the routes the app really serves."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from cnn_model.modalities import MODALITIES
from utils.errors import WEB_BLUEPRINTS

# Routes flask-smorest serves about the document itself; everything else must be described in it.
DOCUMENTATION_ROUTES = {
    "/api/v1/openapi.json",
    "/api/docs",
    "/api/docs/assets/<path:filename>",
}


def openapi_path(rule: str) -> str:
    """Flask's /things/<uuid:thing_id> as OpenAPI's /things/{thing_id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_is_valid_openapi_3(document):
    validate(document)
    assert document["openapi"].startswith("3.") and document["info"]["title"] == "MedSight API"


def test_swagger_ui_is_served_and_every_error_has_one_schema(client, document):
    assert client.get("/api/docs").status_code == 200
    error_schema = document["components"]["schemas"]["Error"]
    assert error_schema["properties"]["error"]["$ref"].endswith("/ErrorDetail")


def test_every_api_route_and_method_is_documented(app, document):
    checked = 0
    browser_pages = app.extensions[WEB_BLUEPRINTS]  # views/: HTML pages, not part of the API
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule in DOCUMENTATION_ROUTES:
            continue
        if rule.endpoint.split(".", 1)[0] in browser_pages:
            continue
        path = openapi_path(rule.rule)
        assert path in document["paths"], f"{rule.rule} is served but not in the OpenAPI document"
        documented = set(document["paths"][path])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in documented, f"{method} {rule.rule} is not documented"
        checked += 1
    assert checked >= 15
    assert {"/health", "/ready", "/predict"} <= set(document["paths"])


def test_upload_is_documented_as_multipart_with_the_file(document):
    body = document["paths"]["/api/v1/predictions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    schema = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["file"]["format"] == "binary"
    assert schema["properties"]["modality"]["enum"] == [*MODALITIES, "auto"]


def test_protected_operations_declare_bearer_auth(document):
    operation = document["paths"]["/api/v1/predictions/{prediction_id}"]["get"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert "security" not in document["paths"]["/api/v1/models"]["get"]


def test_swagger_ui_is_served_from_this_app_only(client):
    """The docs page works offline: every script and stylesheet it loads is ours, and is there."""
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets), assets
    assert "//" not in " ".join(assets), f"external assets: {assets}"
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content_length and asset.content_length > 1000, url
        asset.close()
