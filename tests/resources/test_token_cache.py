"""The personal access token cache: a lookup is reused for a few seconds, but never past a change that matters.

Each worker process keeps its own copy (services.token_cache); a revocation, a disabled account or a
password change empties every worker's at once, here two apps on one database and one instance folder,
as two gunicorn workers of a node are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

import managers.tokens
import services.token_cache
from db import db
from managers.users import UserManager
from models import utcnow
from tests.conftest import DEFAULT_PASSWORD, dispose, make_app
from tests.resources.helpers import assert_error, bearer

TOKENS = "/api/v1/tokens"
ME = "/api/v1/auth/me"


def create_token(client, account, **body) -> str:
    response = client.post(TOKENS, headers=account.headers, json={"name": "ci", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@contextlib.contextmanager
def token_reads(app) -> Iterator[list[str]]:
    """The statements app sends that read a token or an account row."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        lowered = statement.lower()
        if lowered.lstrip().startswith("select") and ("from api_tokens" in lowered or "from users" in lowered):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def second_worker(app) -> Iterator:
    """Another app on the same database and instance folder: a second worker process of the same node."""
    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"], Path(app.instance_path).parent)
    yield other
    dispose(other)


def test_a_cached_lookup_reads_no_token_or_account_row(app, client, patient):
    secret = create_token(client, patient)["token"]
    assert client.get(ME, headers=bearer(secret)).status_code == 200  # read, touched and cached
    with token_reads(app) as reads:
        me = client.get(ME, headers=bearer(secret))
    assert me.status_code == 200 and me.get_json()["email"] == patient.email
    assert reads == []


def test_revocation_counts_at_once_after_a_cached_lookup(client, patient):
    created = create_token(client, patient)
    assert client.get(ME, headers=bearer(created["token"])).status_code == 200
    assert client.delete(f"{TOKENS}/{created['id']}", headers=patient.headers).status_code == 204
    assert_error(client.get(ME, headers=bearer(created["token"])), 401, "token_revoked")


def test_revocation_on_one_worker_counts_at_once_on_another(client, second_worker, patient):
    created = create_token(client, patient)
    other = second_worker.test_client()
    assert other.get(ME, headers=bearer(created["token"])).status_code == 200  # cached by the second worker
    assert other.get(ME, headers=bearer(created["token"])).status_code == 200
    assert client.delete(f"{TOKENS}/{created['id']}", headers=patient.headers).status_code == 204
    assert_error(other.get(ME, headers=bearer(created["token"])), 401, "token_revoked")


def test_a_disabled_account_stops_at_once_on_every_worker(app, client, second_worker, patient):
    secret = create_token(client, patient)["token"]
    other = second_worker.test_client()
    for worker in (client, other):
        assert worker.get(ME, headers=bearer(secret)).status_code == 200
    with app.app_context():
        UserManager.set_active(UserManager.get(patient.id), False)
    for worker in (client, other):
        assert_error(worker.get(ME, headers=bearer(secret)), 401, "account_disabled")


def test_a_password_change_empties_the_cache_and_keeps_the_token(app, client, second_worker, patient):
    secret = create_token(client, patient)["token"]
    other = second_worker.test_client()
    assert other.get(ME, headers=bearer(secret)).status_code == 200
    changed = client.post(
        "/api/v1/auth/password",
        headers=patient.headers,
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a-new-long-passphrase-42"},
    )
    assert changed.status_code == 200, changed.get_json()
    with token_reads(second_worker) as reads:
        assert other.get(ME, headers=bearer(secret)).status_code == 200  # personal tokens outlive a password change
    assert reads  # but the second worker read the rows again


def test_expiry_is_checked_on_a_cached_lookup(client, patient, monkeypatch):
    secret = create_token(client, patient, expires_in_days=1)["token"]
    assert client.get(ME, headers=bearer(secret)).status_code == 200
    later = utcnow() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(managers.tokens, "utcnow", lambda: later)
    assert_error(client.get(ME, headers=bearer(secret)), 401, "token_expired")


def test_an_entry_is_read_again_after_its_seconds(app, client, patient, monkeypatch):
    secret = create_token(client, patient)["token"]
    assert client.get(ME, headers=bearer(secret)).status_code == 200
    now = services.token_cache.time.monotonic()
    seconds = app.config["PAT_CACHE_SECONDS"]
    monkeypatch.setattr(services.token_cache.time, "monotonic", lambda: now + seconds)
    with token_reads(app) as reads:
        assert client.get(ME, headers=bearer(secret)).status_code == 200
    assert reads


def test_an_unreadable_epoch_reads_the_database_every_time(app, client, patient, monkeypatch):
    secret = create_token(client, patient)["token"]
    assert client.get(ME, headers=bearer(secret)).status_code == 200
    monkeypatch.setattr(app.extensions["token_cache"].store, "current", lambda: None)
    with token_reads(app) as reads:
        assert client.get(ME, headers=bearer(secret)).status_code == 200
    assert reads


def test_unknown_tokens_are_not_cached(app, client, patient):
    create_token(client, patient)
    for _ in range(3):
        assert_error(client.get(ME, headers=bearer("msk_deadbeef_nothing")), 401, "token_invalid")
    assert app.extensions["token_cache"]._entries == {}
