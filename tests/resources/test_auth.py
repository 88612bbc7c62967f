"""/api/v1/auth: register, login, me, refresh, logout, password change — as a client sees them, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select

from constants import AuditAction
from db import db
from managers.sign_in_backoff import FREE_FAILURES
from managers.users import UserManager
from models import AuditEvent, User
from tests.conftest import DEFAULT_PASSWORD
from tests.resources.helpers import assert_error, bearer

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PASSWORD = "/api/v1/auth/password"
NEW_PASSWORD = "a-new-password-77"


def test_register_returns_the_new_patient_without_secrets(client):
    response = client.post(
        REGISTER, json={"email": "  Alice@Example.ORG ", "password": DEFAULT_PASSWORD, "full_name": "Alice A"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "email", "full_name", "role", "is_active", "created_at"}
    assert body["email"] == "alice@example.org"
    assert body["role"] == "patient" and body["is_active"] is True and body["full_name"] == "Alice A"
    assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 0


def test_register_stores_a_slow_hash_not_the_password(client, app):
    client.post(REGISTER, json={"email": "bob@example.org", "password": DEFAULT_PASSWORD})
    with app.app_context():
        user = UserManager.get_by_email("bob@example.org")
        assert user.password_hash.startswith("scrypt:")
        assert DEFAULT_PASSWORD not in user.password_hash


def test_register_same_email_in_other_case_is_409_email_taken(client):
    assert client.post(REGISTER, json={"email": "carol@example.org", "password": DEFAULT_PASSWORD}).status_code == 201
    response = client.post(REGISTER, json={"email": "CAROL@example.org", "password": "other-pass-99"})
    assert_error(response, 409, "email_taken")


def test_register_weak_passwords_are_422_with_reasons(client):
    cases = {
        "short1": "password",
        "onlyletterslong": "password",
        "12345678901234": "password",
    }
    for password in cases:
        error = assert_error(
            client.post(REGISTER, json={"email": "d@example.org", "password": password}), 422, "validation_error"
        )
        assert "password" in error["details"]
    error = assert_error(
        client.post(REGISTER, json={"email": "erin99@example.org", "password": "ERIN99@example.org"}), 422
    )
    assert "email" in " ".join(error["details"]["password"])


def test_register_records_an_audit_event(client, app):
    user_id = client.post(REGISTER, json={"email": "f@example.org", "password": DEFAULT_PASSWORD}).get_json()["id"]
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.REGISTER))
        assert str(event.actor_id) == user_id and event.target_id == user_id
        assert event.ip == "127.0.0.1"
        assert event.at.tzinfo is not None


def test_login_returns_bearer_access_and_refresh_tokens(client, patient):
    response = client.post(LOGIN, json={"email": patient.email.upper(), "password": patient.password})
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    assert body["access_token"] and body["refresh_token"] and body["access_token"] != body["refresh_token"]


def test_login_wrong_password_and_unknown_email_get_the_same_401(client, patient):
    wrong = assert_error(
        client.post(LOGIN, json={"email": patient.email, "password": "nope-nope-1"}), 401, "invalid_credentials"
    )
    unknown = assert_error(
        client.post(LOGIN, json={"email": "nobody@example.org", "password": "nope-nope-1"}), 401, "invalid_credentials"
    )
    wrong.pop("request_id"), unknown.pop("request_id")  # each request has its own
    assert wrong == unknown


def test_failed_login_is_audited(client, app, patient):
    client.post(LOGIN, json={"email": patient.email, "password": "nope-nope-1"})
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.LOGIN_FAILED))
        assert str(event.actor_id) == patient.id


def _failed_sign_ins(client, admin) -> list[dict]:
    query = {"action": AuditAction.LOGIN_FAILED, "per_page": 100}
    return client.get("/api/v1/admin/audit", query_string=query, headers=admin.headers).get_json()["items"]


def test_a_password_typed_as_the_email_is_never_shown_in_the_audit_trail(client, admin):
    for typed in ("Tr0ub4dor&3-secret", "Tr0ub4dor&3-secret", "another Secret 9"):
        client.post(LOGIN, json={"email": typed, "password": "nope-nope-1"})
    events = _failed_sign_ins(client, admin)
    shown = [event["details"]["email"] for event in events]
    assert all(marker.startswith("unparsed:") and len(marker) == len("unparsed:") + 8 for marker in shown)
    assert sorted(Counter(shown).values()) == [1, 2]  # a repeated attempt is still recognisable
    listing = str(events).lower()
    assert "tr0ub4dor" not in listing and "secret" not in listing


def test_an_unknown_address_at_a_failed_sign_in_is_masked(client, admin):
    client.post(LOGIN, json={"email": " Jane.Doe@Example.ORG", "password": "nope-nope-1"})
    (event,) = _failed_sign_ins(client, admin)
    assert event["details"] == {"email": "j***@example.org"}
    assert event["actor_id"] is None and event["target_id"] is None


def test_a_failed_sign_in_to_an_account_names_it_by_id_not_by_what_was_typed(client, patient, admin):
    client.post(LOGIN, json={"email": patient.email.upper(), "password": "nope-nope-1"})
    (event,) = _failed_sign_ins(client, admin)
    assert event["target_id"] == patient.id and event["details"] == {}


def test_me_returns_the_caller(client, patient):
    response = client.get(ME, headers=patient.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["email"] == patient.email and body["role"] == "patient" and body["id"] == patient.id
    assert body["full_name"] == "Pat Ient"


def test_me_without_token_is_401_token_missing(client):
    response = client.get(ME)
    assert_error(response, 401, "token_missing")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_me_with_garbage_token_is_401_token_invalid(client):
    assert_error(client.get(ME, headers=bearer("not.a.jwt")), 401, "token_invalid")
    assert_error(client.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "token_missing")


def test_token_signed_with_another_secret_is_rejected(client, patient):
    header, payload, _signature = patient.access_token.split(".")
    assert_error(client.get(ME, headers=bearer(f"{header}.{payload}.AAAA")), 401, "token_invalid")


def test_expired_access_token_is_401_token_expired(client, app, patient):
    from datetime import timedelta

    from flask_jwt_extended import create_access_token

    with app.app_context():
        expired = create_access_token(identity=patient.id, expires_delta=timedelta(seconds=-1))
    assert_error(client.get(ME, headers=bearer(expired)), 401, "token_expired")


def test_refresh_token_gives_a_working_access_token(client, patient):
    response = client.post(REFRESH, headers=bearer(patient.refresh_token))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200


def test_refresh_with_access_token_and_me_with_refresh_token_are_refused(client, patient):
    assert_error(client.post(REFRESH, headers=patient.headers), 401, "token_invalid")
    assert_error(client.get(ME, headers=bearer(patient.refresh_token)), 401, "token_invalid")


def test_logout_revokes_the_access_token_at_once(client, patient):
    assert client.post(LOGOUT, headers=patient.headers).status_code == 204
    assert_error(client.get(ME, headers=patient.headers), 401, "token_revoked")
    # The refresh token was not handed in, so it still works.
    assert client.post(REFRESH, headers=bearer(patient.refresh_token)).status_code == 200


def test_logout_with_refresh_token_in_body_revokes_both(client, patient):
    response = client.post(LOGOUT, headers=patient.headers, json={"refresh_token": patient.refresh_token})
    assert response.status_code == 204
    assert_error(client.get(ME, headers=patient.headers), 401, "token_revoked")
    assert_error(client.post(REFRESH, headers=bearer(patient.refresh_token)), 401, "token_revoked")


def test_logout_presenting_the_refresh_token_revokes_it(client, patient):
    assert client.post(LOGOUT, headers=bearer(patient.refresh_token)).status_code == 204
    assert_error(client.post(REFRESH, headers=bearer(patient.refresh_token)), 401, "token_revoked")


def test_logout_twice_is_401_revoked_and_is_audited(client, app, patient):
    client.post(LOGOUT, headers=patient.headers)
    assert_error(client.post(LOGOUT, headers=patient.headers), 401, "token_revoked")
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert actions.count(AuditAction.LOGOUT) == 1
        assert AuditAction.LOGIN in actions


def test_logout_with_someone_elses_refresh_token_is_422_and_revokes_nothing(client, make_account):
    alice, bob = make_account(), make_account()
    error = assert_error(
        client.post(LOGOUT, headers=alice.headers, json={"refresh_token": bob.refresh_token}), 422, "validation_error"
    )
    assert "refresh_token" in error["details"]
    assert client.get(ME, headers=alice.headers).status_code == 200
    assert client.post(REFRESH, headers=bearer(bob.refresh_token)).status_code == 200


def test_disabled_user_loses_access_at_once(client, app, patient):
    with app.app_context():
        UserManager.set_active(UserManager.get(patient.id), False)
    assert_error(client.get(ME, headers=patient.headers), 401, "account_disabled")
    assert_error(client.post(REFRESH, headers=bearer(patient.refresh_token)), 401, "account_disabled")
    assert_error(
        client.post(LOGIN, json={"email": patient.email, "password": patient.password}), 401, "invalid_credentials"
    )


def test_emails_are_stored_lower_case_and_unique(app, patient):
    with app.app_context():
        emails = db.session.scalars(select(User.email)).all()
        assert emails == [patient.email] and patient.email == patient.email.lower()


# -- changing the password ------------------------------------------------------------------


def _change_password(client, account, current=None, new=NEW_PASSWORD, headers=None):
    return client.post(
        PASSWORD,
        headers=headers or account.headers,
        json={"current_password": current or account.password, "new_password": new},
    )


def test_password_change_signs_out_every_other_session(client, app, login, patient):
    other_device = login(patient.email, patient.password)

    response = _change_password(client, patient)

    assert response.status_code == 200
    fresh = response.get_json()
    assert set(fresh) == {"access_token", "refresh_token", "token_type", "expires_in"}
    for old_access in (other_device["access_token"], patient.access_token):
        assert_error(client.get(ME, headers=bearer(old_access)), 401, "token_revoked")
    for old_refresh in (other_device["refresh_token"], patient.refresh_token):
        assert_error(client.post(REFRESH, headers=bearer(old_refresh)), 401, "token_revoked")
    # The client that changed it stays signed in with the pair it got back.
    assert client.get(ME, headers=bearer(fresh["access_token"])).status_code == 200
    renewed = client.post(REFRESH, headers=bearer(fresh["refresh_token"]))
    assert renewed.status_code == 200
    assert client.get(ME, headers=bearer(renewed.get_json()["access_token"])).status_code == 200
    assert login(patient.email, NEW_PASSWORD)["access_token"]
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert actions.count(AuditAction.PASSWORD_CHANGE) == 1


def test_password_change_leaves_other_accounts_signed_in(client, make_account):
    alice, bob = make_account(), make_account()
    assert _change_password(client, alice).status_code == 200
    assert client.get(ME, headers=bob.headers).status_code == 200
    assert client.post(REFRESH, headers=bearer(bob.refresh_token)).status_code == 200


def test_password_change_keeps_personal_access_tokens(client, patient):
    created = client.post("/api/v1/tokens", headers=patient.headers, json={"name": "backup script"})
    assert created.status_code == 201
    pat = created.get_json()["token"]

    assert _change_password(client, patient).status_code == 200

    assert client.get(ME, headers=bearer(pat)).status_code == 200


def test_a_personal_access_token_cannot_change_the_password(client, patient):
    pat = client.post("/api/v1/tokens", headers=patient.headers, json={"name": "script"}).get_json()["token"]
    assert_error(_change_password(client, patient, headers=bearer(pat)), 403, "login_required")


def test_password_change_with_a_wrong_current_password_or_a_weak_new_one_changes_nothing(client, login, patient):
    wrong = assert_error(_change_password(client, patient, current="not-the-password-1"), 422, "validation_error")
    assert "current_password" in wrong["details"]
    weak = assert_error(_change_password(client, patient, new="short"), 422, "validation_error")
    assert "new_password" in weak["details"]
    assert client.get(ME, headers=patient.headers).status_code == 200
    assert login(patient.email, patient.password)["access_token"]


def test_wrong_current_passwords_are_slowed_down_like_failed_sign_ins(client, patient):
    for _ in range(FREE_FAILURES + 1):  # the last one starts the wait
        assert _change_password(client, patient, current="wrong-guess-1").status_code == 422

    waiting = _change_password(client, patient)  # even the right password waits

    error = assert_error(waiting, 429, "too_many_requests")
    assert error["details"]["retry_after"] > 0 and int(waiting.headers["Retry-After"]) > 0
    assert client.get(ME, headers=patient.headers).status_code == 200  # nothing was changed
    # The same per-account wait holds back sign-in.
    refused = client.post(LOGIN, json={"email": patient.email, "password": patient.password})
    assert_error(refused, 429, "too_many_requests")


def test_a_password_change_resets_the_back_off(client, app, patient):
    for _ in range(FREE_FAILURES):
        assert _change_password(client, patient, current="wrong-guess-1").status_code == 422
    assert _change_password(client, patient).status_code == 200
    # Without the reset, the next wrong sign-in would start a wait.
    for _ in range(FREE_FAILURES):
        wrong = client.post(LOGIN, json={"email": patient.email, "password": "wrong-guess-1"})
        assert_error(wrong, 401, "invalid_credentials")
    assert client.post(LOGIN, json={"email": patient.email, "password": NEW_PASSWORD}).status_code == 200
