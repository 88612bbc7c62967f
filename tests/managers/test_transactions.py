"""unit_of_work: all of a use case is committed, or none of it is and its side effects are undone."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from db import db
from managers.transactions import unit_of_work
from models import AuditEvent
from utils.errors import DatabaseUnavailable


def count_events() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent))


def test_block_that_finishes_is_committed(app_context):
    with unit_of_work():
        db.session.add(AuditEvent(action="test.ok"))
    db.session.remove()  # a new session sees only what was committed
    assert count_events() == 1


def test_failure_rolls_back_and_runs_compensations_newest_first(app_context):
    undone = []
    with pytest.raises(ValueError, match="boom"):
        with unit_of_work() as uow:
            db.session.add(AuditEvent(action="test.fail"))
            uow.on_rollback(undone.append, "first stored object")
            uow.on_rollback(undone.append, "second stored object")
            db.session.flush()
            raise ValueError("boom")
    assert undone == ["second stored object", "first stored object"]
    assert count_events() == 0


def test_a_failing_compensation_does_not_stop_the_others_nor_hide_the_error(app_context):
    undone = []

    def broken():
        raise OSError("bucket gone")

    with pytest.raises(ValueError, match="original"):
        with unit_of_work() as uow:
            uow.on_rollback(undone.append, "a")
            uow.on_rollback(broken)
            raise ValueError("original")
    assert undone == ["a"]


def test_commit_failure_runs_compensations_and_becomes_database_unavailable(app_context, monkeypatch):
    undone = []

    def commit_fails():
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(db.session, "commit", commit_fails)
    with pytest.raises(DatabaseUnavailable):
        with unit_of_work() as uow:
            db.session.add(AuditEvent(action="test.commit_fails"))
            uow.on_rollback(undone.append, "stored object")
    monkeypatch.undo()
    assert undone == ["stored object"]
    assert count_events() == 0


def test_nested_unit_joins_the_outer_one(app_context):
    undone = []
    with pytest.raises(RuntimeError):
        with unit_of_work():
            with unit_of_work() as inner:
                db.session.add(AuditEvent(action="test.inner"))
                inner.on_rollback(undone.append, "inner object")
            # The inner block did not commit on its own...
            raise RuntimeError("outer fails after the inner block")
    # ...so the outer failure undoes it, compensations included.
    assert count_events() == 0
    assert undone == ["inner object"]
