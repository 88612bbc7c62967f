"""One decorator guards every endpoint: authentication, role and personal-token scope."""

from __future__ import annotations

import re

import pytest
from flask.views import MethodView

from auth import auth_required, current_credential, current_user
from constants import Role
from managers.users import UserManager
from resources.api import Blueprint
from schemas.auth import NoBodySchema
from tests.conftest import DEFAULT_PASSWORD
from tests.resources.helpers import assert_error, bearer

guarded = Blueprint("guarded", __name__, url_prefix="/test")


@guarded.route("/admin-only")
class AdminOnly(MethodView):
    @auth_required(role=Role.ADMIN)
    @guarded.response(200)
    def get(self):
        return {"email": current_user().email, "via": current_credential().kind}


@guarded.route("/anyone")
class Anyone(MethodView):
    @auth_required()
    @guarded.response(200)
    def get(self):
        return {"email": current_user().email, "via": current_credential().kind}


@guarded.route("/cookie-page")
class CookiePage(MethodView):
    @auth_required(locations=("cookies",))
    @guarded.response(200)
    def get(self):
        return {"email": current_user().email, "via": current_credential().kind}


@guarded.route("/explode")
class Explode(MethodView):
    def get(self):
        raise RuntimeError("secret internals /etc/passwd")


@pytest.fixture
def guarded_app(build_app):
    app = build_app()
    app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(guarded)
    return app


def login(client, email):
    return client.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}).get_json()


def test_admin_role_is_enforced_for_jwt_and_personal_tokens(guarded_app):
    client = guarded_app.test_client()
    with guarded_app.app_context():
        UserManager.create("admin@example.org", DEFAULT_PASSWORD, role=Role.ADMIN)
        UserManager.create("pat@example.org", DEFAULT_PASSWORD)
    admin_jwt = login(client, "admin@example.org")["access_token"]
    patient_jwt = login(client, "pat@example.org")["access_token"]
    admin_pat = client.post("/api/v1/tokens", headers=bearer(admin_jwt), json={"name": "a"}).get_json()["token"]

    assert client.get("/test/admin-only", headers=bearer(admin_jwt)).get_json() == {
        "email": "admin@example.org",
        "via": "jwt",
    }
    assert client.get("/test/admin-only", headers=bearer(admin_pat)).get_json()["via"] == "personal_access_token"
    assert_error(client.get("/test/admin-only", headers=bearer(patient_jwt)), 403, "forbidden")
    assert_error(client.get("/test/admin-only"), 401, "token_missing")
    assert client.get("/test/anyone", headers=bearer(patient_jwt)).status_code == 200


def test_cookie_guarded_view_takes_the_jwt_cookie_and_no_bearer_token(guarded_app):
    client = guarded_app.test_client()
    with guarded_app.app_context():
        UserManager.create("pat@example.org", DEFAULT_PASSWORD)
    access = login(client, "pat@example.org")["access_token"]
    personal = client.post("/api/v1/tokens", headers=bearer(access), json={"name": "p"}).get_json()["token"]

    assert_error(client.get("/test/cookie-page", headers=bearer(access)), 401, "token_missing")
    assert_error(client.get("/test/cookie-page", headers=bearer(personal)), 401, "token_missing")
    client.set_cookie(guarded_app.config["JWT_ACCESS_COOKIE_NAME"], access)
    assert client.get("/test/cookie-page").get_json() == {"email": "pat@example.org", "via": "jwt"}


def test_demoted_admin_loses_admin_access_on_the_next_request(guarded_app):
    client = guarded_app.test_client()
    with guarded_app.app_context():
        UserManager.create("boss@example.org", DEFAULT_PASSWORD, role=Role.ADMIN)
    token = login(client, "boss@example.org")["access_token"]
    assert client.get("/test/admin-only", headers=bearer(token)).status_code == 200
    with guarded_app.app_context():
        UserManager.set_role(UserManager.get_by_email("boss@example.org"), Role.PATIENT)
    assert_error(client.get("/test/admin-only", headers=bearer(token)), 403, "forbidden")


def test_unexpected_error_is_500_json_without_internals(guarded_app, caplog):
    response = guarded_app.test_client().get("/test/explode")
    error = assert_error(response, 500, "internal_error")
    assert "passwd" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
    assert error["details"] == {}
    assert any("unhandled error" in r.message and r.exc_info for r in caplog.records)


def test_decorated_endpoints_are_documented_as_bearer_protected(guarded_app):
    spec = guarded_app.test_client().get("/api/v1/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/test/admin-only"]["get"]["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/api/v1/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in spec["paths"]["/api/v1/auth/login"]["post"]


# -- who is calling is settled before anything is read ------------------------------------------

_SOME_ID = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    "method, url, request_kwargs",
    [
        ("post", "/api/v1/predictions", {"data": {"modality": "dental", "note": "x" * 600}}),
        ("post", "/predict?modality=dental", {"data": {"modality": "dental"}}),
        ("post", "/api/v1/tokens", {"json": {"name": "", "scopes": ["root"]}}),
        ("patch", f"/api/v1/admin/users/{_SOME_ID}", {"json": {"role": "emperor"}}),
    ],
)
def test_anonymous_request_with_an_invalid_body_is_401_not_422(client, method, url, request_kwargs):
    assert_error(getattr(client, method)(url, **request_kwargs), 401, "token_missing")


def test_every_guarded_operation_answers_an_anonymous_invalid_request_with_401(app, client):
    """Whatever a guarded operation takes, a request without a token is refused before it is parsed."""
    document = client.get("/api/v1/openapi.json").get_json()
    checked = 0
    for path, operations in document["paths"].items():
        examples = {p["name"]: p["schema"].get("enum", [_SOME_ID])[0] for p in operations.get("parameters", [])}
        url = re.sub(r"{([^}]+)}", lambda match, examples=examples: examples.get(match[1], _SOME_ID), path)
        for method, operation in operations.items():
            if method == "parameters" or "security" not in operation:
                continue
            response = client.open(
                url,
                method=method.upper(),
                query_string="page=0&per_page=x&modality=dental",
                json={"unexpected": ["field"]},
            )
            assert response.status_code == 401, (method, path, response.get_json())
            checked += 1
    assert checked >= 15


def test_arguments_above_auth_required_is_refused_at_import():
    blueprint = Blueprint("misordered", __name__)
    with pytest.raises(TypeError, match="auth_required above"):

        class _Misordered(MethodView):
            @blueprint.arguments(NoBodySchema)
            @auth_required()
            def post(self, body):
                return body
