"""/api/v1/tokens: personal access tokens are shown once, stored hashed, and work like a JWT until revoked."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from db import db
from managers.users import UserManager
from models import ApiToken, utcnow
from tests.resources.helpers import assert_error, bearer

TOKENS = "/api/v1/tokens"
ME = "/api/v1/auth/me"


def create_token(client, account, **body):
    response = client.post(TOKENS, headers=account.headers, json={"name": "ci", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_shows_the_secret_once_and_stores_only_its_hash(client, app, patient):
    created = create_token(client, patient, name="laptop script")
    secret = created["token"]
    assert secret.startswith(created["prefix"] + "_") and created["prefix"].startswith("msk_")
    assert len(secret) > 40
    assert created["name"] == "laptop script" and created["scopes"] == ["read", "write"]
    assert created["expires_at"] is None and created["revoked_at"] is None
    with app.app_context():
        row = db.session.scalar(select(ApiToken))
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    listed = client.get(TOKENS, headers=patient.headers).get_json()
    assert listed["total"] == 1 and "token" not in listed["items"][0]
    assert secret not in str(listed)


def test_token_works_as_bearer_on_me_and_records_last_use(client, patient):
    created = create_token(client, patient)
    me = client.get(ME, headers=bearer(created["token"]))
    assert me.status_code == 200 and me.get_json()["email"] == patient.email
    [listed] = client.get(TOKENS, headers=patient.headers).get_json()["items"]
    assert listed["last_used_at"] is not None


def test_list_is_newest_first_and_only_the_callers(client, make_account):
    alice, bob = make_account(), make_account()
    create_token(client, alice, name="first")
    create_token(client, alice, name="second")
    create_token(client, bob, name="bobs")
    listed = client.get(TOKENS, headers=alice.headers).get_json()
    assert [t["name"] for t in listed["items"]] == ["second", "first"] and listed["total"] == 2


def test_revoked_token_is_refused_on_the_next_request(client, patient):
    created = create_token(client, patient)
    assert client.delete(f"{TOKENS}/{created['id']}", headers=patient.headers).status_code == 204
    assert_error(client.get(ME, headers=bearer(created["token"])), 401, "token_revoked")
    [listed] = client.get(TOKENS, headers=patient.headers).get_json()["items"]
    assert listed["revoked_at"] is not None
    # Revoking again changes nothing and is not an error.
    assert client.delete(f"{TOKENS}/{created['id']}", headers=patient.headers).status_code == 204


def test_other_users_token_is_404_and_stays_valid(client, make_account):
    alice, bob = make_account(), make_account()
    created = create_token(client, bob)
    assert_error(client.delete(f"{TOKENS}/{created['id']}", headers=alice.headers), 404, "not_found")
    assert client.get(ME, headers=bearer(created["token"])).status_code == 200


def test_unknown_and_malformed_token_ids_are_404(client, patient):
    assert_error(client.delete(f"{TOKENS}/00000000-0000-0000-0000-000000000000", headers=patient.headers), 404)
    assert_error(client.delete(f"{TOKENS}/not-a-uuid", headers=patient.headers), 404, "not_found")


def test_unknown_personal_token_is_401_token_invalid(client, patient):
    created = create_token(client, patient)
    assert_error(client.get(ME, headers=bearer(created["token"] + "x")), 401, "token_invalid")
    assert_error(client.get(ME, headers=bearer("msk_deadbeef_nothing")), 401, "token_invalid")


def test_expired_token_is_401_token_expired(client, app, patient):
    created = create_token(client, patient, expires_in_days=30)
    with app.app_context():
        db.session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert_error(client.get(ME, headers=bearer(created["token"])), 401, "token_expired")


def test_expires_in_days_sets_the_expiry(client, patient):
    created = create_token(client, patient, expires_in_days=7)
    from datetime import datetime

    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=6, hours=23) < expires - utcnow() <= timedelta(days=7)


def test_disabled_users_token_is_refused(client, app, patient):
    created = create_token(client, patient)
    with app.app_context():
        UserManager.set_active(UserManager.get(patient.id), False)
    assert_error(client.get(ME, headers=bearer(created["token"])), 401, "account_disabled")


def test_read_only_token_cannot_write(client, patient):
    created = create_token(client, patient, scopes=["read"])
    assert client.get(ME, headers=bearer(created["token"])).status_code == 200
    response = client.delete(
        "/api/v1/predictions/00000000-0000-4000-8000-000000000000", headers=bearer(created["token"])
    )
    assert_error(response, 403, "insufficient_scope")


@pytest.mark.parametrize("scopes", [["read"], ["write"], ["read", "write"]])
def test_personal_token_cannot_create_tokens_whatever_its_scopes(app, client, patient, scopes):
    """No escalation: a read- or write-only token must not mint a token with more scopes (or any token)."""
    created = create_token(client, patient, scopes=scopes)
    response = client.post(TOKENS, headers=bearer(created["token"]), json={"name": "x", "scopes": ["read", "write"]})
    assert_error(response, 403, "login_required")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 1


def test_personal_token_cannot_revoke_tokens_but_can_list_them(client, patient):
    keeper, script = create_token(client, patient, name="keeper"), create_token(client, patient, name="script")
    assert_error(client.delete(f"{TOKENS}/{keeper['id']}", headers=bearer(script["token"])), 403, "login_required")
    assert client.get(ME, headers=bearer(keeper["token"])).status_code == 200
    assert client.get(TOKENS, headers=bearer(script["token"])).get_json()["total"] == 2


def test_logout_with_a_personal_token_revokes_it(client, patient):
    created = create_token(client, patient)
    assert client.post("/api/v1/auth/logout", headers=bearer(created["token"])).status_code == 204
    assert_error(client.get(ME, headers=bearer(created["token"])), 401, "token_revoked")
    assert client.get(ME, headers=patient.headers).status_code == 200


def test_personal_token_cannot_be_used_as_refresh_token(client, patient):
    created = create_token(client, patient)
    assert_error(client.post("/api/v1/auth/refresh", headers=bearer(created["token"])), 401, "token_invalid")


def test_create_rejects_bad_input(client, patient):
    for body in (
        {},
        {"name": ""},
        {"name": 5},
        {"name": "x" * 101},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": "read"},
        {"name": "x", "expires_in_days": 0},
        {"name": "x", "expires_in_days": 366},
        {"name": "x", "expires_in_days": "7"},
        {"name": "x", "unexpected": True},
    ):
        assert_error(client.post(TOKENS, headers=patient.headers, json=body), 422, "validation_error")


def test_token_endpoints_need_authentication(client):
    assert_error(client.get(TOKENS), 401, "token_missing")
    assert_error(client.post(TOKENS, json={"name": "x"}), 401, "token_missing")
    assert_error(client.delete(f"{TOKENS}/00000000-0000-0000-0000-000000000000"), 401, "token_missing")
