"""What one upload costs the database: a ceiling on its statements and one commit.

Counted with the engine's own events on an upload with a personal access token whose lookup is
cached (services.token_cache), as a client that uploads again and again sends them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import event

from db import db
from tests.resources.helpers import bearer

TOKENS = "/api/v1/tokens"
# In the transaction: the account's row held (FOR NO KEY UPDATE), the storage quota's sum, the prediction and
# its audit event. The sum cannot join the lock's statement: on PostgreSQL a statement reads what was committed
# when it began, before its lock was granted, so it would miss the upload that held the lock
# (tests/resources/test_account_races.py). The early sum, before the model runs, is skipped where this
# process's last figure for the account leaves room (managers.upload_quota.KnownUsage), as on a second upload.
STATEMENTS_PER_UPLOAD = 4
# Without the storage quota, no sum.
STATEMENTS_PER_UPLOAD_WITHOUT_QUOTA = 3


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    commits: int = 0


@contextlib.contextmanager
def counted(app) -> Iterator[Counted]:
    seen = Counted()

    def on_statement(_conn, _cursor, statement, *_args) -> None:
        # SQLite's BEGIN IMMEDIATE opens the transaction PostgreSQL opens with the first statement.
        if statement != "BEGIN IMMEDIATE":
            seen.statements.append(statement)

    def on_commit(_conn) -> None:
        seen.commits += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)


@dataclass
class TokenHolder:
    headers: dict[str, str]


def token_holder(client, account) -> TokenHolder:
    response = client.post(TOKENS, headers=account.headers, json={"name": "uploads"})
    assert response.status_code == 201, response.get_json()
    return TokenHolder(bearer(response.get_json()["token"]))


def test_an_upload_is_one_commit_of_a_few_statements(app, client, patient, predict, modality):
    holder = token_holder(client, patient)
    predict(holder, modality)  # the token's lookup read, its use recorded, and cached
    with counted(app) as seen:
        predict(holder, modality)
    assert seen.commits == 1, seen.statements
    assert len(seen.statements) <= STATEMENTS_PER_UPLOAD, seen.statements


def test_without_a_quota_an_upload_skips_its_sum(app, client, patient, predict, modality, monkeypatch):
    monkeypatch.setitem(app.config, "STORAGE_QUOTA_BYTES", 0)
    holder = token_holder(client, patient)
    predict(holder, modality)
    with counted(app) as seen:
        predict(holder, modality)
    assert seen.commits == 1, seen.statements
    assert len(seen.statements) <= STATEMENTS_PER_UPLOAD_WITHOUT_QUOTA, seen.statements
