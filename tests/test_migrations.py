"""The migrations build exactly the schema the models describe, from empty, on SQLite and PostgreSQL, and
rewrite old rows as the app now writes them."""

from __future__ import annotations

import uuid

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import MIGRATIONS_DIR
from db import db
from models import Prediction
from tests.conftest import SELECTED_BACKENDS, dispose, make_app, make_database


@pytest.fixture(params=SELECTED_BACKENDS)
def empty_app(request, tmp_path, record_backend):
    url, drop = make_database(request.param, tmp_path)
    app = make_app(url, tmp_path)
    record_backend(request.param)
    yield app
    dispose(app)
    drop()


def pending_changes(app) -> list:
    """What `flask db migrate` would still generate: differences between the database and the models."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def table_names(app) -> set[str]:
    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def test_upgrade_from_empty_matches_the_models(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
    assert {"users", "api_tokens", "revoked_tokens", "audit_events"} <= table_names(empty_app)
    assert pending_changes(empty_app) == []


def test_downgrade_to_base_and_up_again(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="base")
    assert table_names(empty_app) <= {"alembic_version"}
    with empty_app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
    assert pending_changes(empty_app) == []


def test_migrations_have_a_single_head(empty_app):
    from alembic.script import ScriptDirectory

    with empty_app.app_context():
        config = empty_app.extensions["migrate"].migrate.get_config(MIGRATIONS_DIR)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_modality_names_are_checked_by_the_app_not_the_database(empty_app):
    # A hand-written list in the schema made every newly registered modality a failed insert (migration 0004).
    with empty_app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        checks = {c["name"] for c in sa.inspect(db.engine).get_check_constraints("predictions")}
    assert "ck_predictions_confidence_is_probability" in checks
    assert "ck_predictions_modality_known" not in checks
    with pytest.raises(ValueError, match="unknown modality"):
        Prediction(modality="dental")


def test_failed_sign_ins_recorded_before_0011_no_longer_show_what_was_typed(empty_app):
    from managers.auth import attempted_email

    events = sa.table(
        "audit_events",
        *(sa.column(name) for name in ("id", "action", "target_id", "at")),
        sa.column("details", sa.JSON()),
    )
    typed = {
        "known": ("jane@example.org", str(uuid.uuid4())),
        "address": ("someone.else@example.org", None),
        "password": ("tr0ub4dor&3-secret", None),
    }
    with empty_app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR, revision="0010")
        rows = [
            {"id": uuid.uuid4(), "action": "auth.login_failed", "target_id": target, "details": {"email": email}}
            for email, target in typed.values()
        ]
        rows.append({"id": uuid.uuid4(), "action": "admin.list_users", "target_id": None, "details": {"email": "x"}})
        with db.engine.begin() as connection:
            connection.execute(
                sa.insert(events), [{**row, "id": row["id"].hex, "at": "2026-12-01 00:00:00"} for row in rows]
            )
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        with db.engine.connect() as connection:
            details = [
                connection.scalar(sa.select(events.c.details).where(events.c.id == row["id"].hex)) for row in rows
            ]
        expected_marker = attempted_email("Tr0ub4dor&3-secret")
    assert details == [{}, {"email": "s***@example.org"}, {"email": expected_marker}, {"email": "x"}]


def test_0018_fills_each_accounts_stored_bytes_from_the_predictions_it_has(empty_app):
    from managers.users import UserManager
    from models import PredictionCount
    from tests.managers.test_predictions import add_rows, bytes_of

    with empty_app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR, revision="0017")
        owners = [UserManager.create(f"owner-{n}@example.org", "correct-horse-42") for n in range(2)]
        for owner, count in zip(owners, (5, 2), strict=True):
            add_rows(owner, count)
        expected = [bytes_of(owner) for owner in owners]
        db.session.remove()
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        filled = [db.session.get(PredictionCount, owner.id).stored_bytes for owner in owners]
    assert filled == expected and expected[0] > 0
