"""`flask --app app users ...`: the first admin comes from the command line, never from an open endpoint."""

from __future__ import annotations

from sqlalchemy import select

from constants import AuditAction
from db import db
from managers.users import UserManager
from models import AuditEvent
from tests.resources.helpers import assert_error, bearer

ADMIN_PASSWORD = "admin-pass-2024"


def run(app, *args, **kwargs):
    return app.test_cli_runner().invoke(args=["users", *args], **kwargs)


def test_create_admin_takes_the_password_from_the_environment(app, client, monkeypatch):
    monkeypatch.setenv("MEDSIGHT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    result = run(app, "create-admin", "Root@Example.org", "--full-name", "Root")
    assert result.exit_code == 0, result.output
    assert "Created admin root@example.org" in result.output
    tokens = client.post("/api/v1/auth/login", json={"email": "root@example.org", "password": ADMIN_PASSWORD})
    me = client.get("/api/v1/auth/me", headers=bearer(tokens.get_json()["access_token"])).get_json()
    assert me["role"] == "admin" and me["full_name"] == "Root"
    with app.app_context():
        assert AuditAction.USER_CREATE_ADMIN in db.session.scalars(select(AuditEvent.action)).all()


def test_create_admin_prompts_twice_without_the_variable(app, monkeypatch):
    monkeypatch.delenv("MEDSIGHT_ADMIN_PASSWORD", raising=False)
    result = run(app, "create-admin", "ops@example.org", input=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert ADMIN_PASSWORD not in result.output
    with app.app_context():
        assert UserManager.get_by_email("ops@example.org").role == "admin"


def test_create_admin_refuses_weak_password_bad_email_and_duplicates(app, patient, monkeypatch):
    monkeypatch.setenv("MEDSIGHT_ADMIN_PASSWORD", "short")
    weak = run(app, "create-admin", "x@example.org")
    assert weak.exit_code != 0 and "password" in weak.output
    monkeypatch.setenv("MEDSIGHT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    bad_email = run(app, "create-admin", "not-an-email")
    assert bad_email.exit_code != 0 and "not a valid email" in bad_email.output
    duplicate = run(app, "create-admin", patient.email)
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    with app.app_context():
        assert UserManager.find_by_email("x@example.org") is None
        assert UserManager.get_by_email(patient.email).role == "patient"


def test_set_role_and_disable(app, client, patient):
    assert run(app, "set-role", patient.email, "admin").exit_code == 0
    assert client.get("/api/v1/auth/me", headers=patient.headers).get_json()["role"] == "admin"
    assert run(app, "set-role", patient.email, "superuser").exit_code != 0
    result = run(app, "disable", patient.email)
    assert result.exit_code == 0 and "disabled" in result.output
    assert_error(client.get("/api/v1/auth/me", headers=patient.headers), 401, "account_disabled")
    assert run(app, "enable", patient.email).exit_code == 0
    assert client.get("/api/v1/auth/me", headers=patient.headers).status_code == 200
    missing = run(app, "disable", "ghost@example.org")
    assert missing.exit_code != 0 and "No account" in missing.output


def test_prune_blocklist_forgets_only_expired_revocations(app, client, patient):
    from datetime import timedelta

    from sqlalchemy import update

    from models import RevokedToken, utcnow

    client.post("/api/v1/auth/logout", headers=patient.headers, json={"refresh_token": patient.refresh_token})
    with app.app_context():
        db.session.execute(
            update(RevokedToken).where(RevokedToken.token_type == "access").values(expires_at=utcnow() - timedelta(1))
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["auth", "prune-blocklist"])
    assert result.exit_code == 0 and "Removed 1 " in result.output
    with app.app_context():
        assert db.session.scalars(select(RevokedToken.token_type)).all() == ["refresh"]
    assert_error(client.post("/api/v1/auth/refresh", headers=bearer(patient.refresh_token)), 401, "token_revoked")
