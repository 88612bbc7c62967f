"""What a personal access token may not do, what a read-only one may, and booleans that are booleans."""

from __future__ import annotations

import pytest

from tests.resources.helpers import assert_error, bearer


def _token(client, account, **body) -> str:
    response = client.post("/api/v1/tokens", json={"name": "t", **body}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


@pytest.mark.parametrize("body", [{"role": "admin"}, {"is_active": False}, {"is_active": True}])
def test_an_admins_personal_token_cannot_change_roles_or_disable_accounts(client, admin, patient, body):
    token = _token(client, admin)
    response = client.patch(f"/api/v1/admin/users/{patient.id}", json=body, headers=bearer(token))
    assert_error(response, 403, "login_required")
    me = client.get(f"/api/v1/admin/users/{patient.id}", headers=admin.headers).get_json()
    assert me["role"] == "patient" and me["is_active"] is True


def test_an_admins_login_still_changes_roles(client, admin, patient):
    response = client.patch(f"/api/v1/admin/users/{patient.id}", json={"role": "admin"}, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["role"] == "admin"


def test_a_read_only_token_revokes_itself_by_logging_out(client, patient):
    token = _token(client, patient, scopes=["read"])
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401, "token_revoked")


def test_a_read_only_token_still_cannot_write(client, patient):
    token = _token(client, patient, scopes=["read"])
    assert_error(client.delete(f"/api/v1/predictions/{patient.id}", headers=bearer(token)), 403, "insufficient_scope")


@pytest.mark.parametrize("value", [0, 1, "true", "false", "yes", None])
def test_is_active_takes_json_booleans_only(client, admin, patient, value):
    response = client.patch(f"/api/v1/admin/users/{patient.id}", json={"is_active": value}, headers=admin.headers)
    assert_error(response, 422, "validation_error")
    assert client.get(f"/api/v1/admin/users/{patient.id}", headers=admin.headers).get_json()["is_active"] is True
