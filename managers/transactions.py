"""The unit of work: commit everything a use case wrote, or undo all of it, side effects included."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import InterfaceError, OperationalError

from db import db
from utils.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class UnitOfWork:
    """Collects compensations: actions that undo side effects outside the database if the commit fails."""

    def __init__(self) -> None:
        self._compensations: list[tuple[Callable[..., Any], tuple, dict]] = []

    def on_rollback(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run action(*args, **kwargs) if this unit of work fails; compensations run newest first."""
        self._compensations.append((action, args, kwargs))

    def _compensate(self) -> None:
        for action, args, kwargs in reversed(self._compensations):
            try:
                action(*args, **kwargs)
            except Exception:
                # One failed undo must not stop the others, nor hide the error that caused the rollback.
                log.exception("compensation %r failed", getattr(action, "__qualname__", action))
        self._compensations.clear()


_current: ContextVar[UnitOfWork | None] = ContextVar("medsight_unit_of_work", default=None)


@contextmanager
def unit_of_work() -> Iterator[UnitOfWork]:
    """Run a block as one transaction: commit at the end, or roll back and run compensations on any error.

    A unit of work opened inside another joins it: only the outermost one commits, and the inner
    block's compensations run if the whole fails. A database that cannot be reached becomes
    DatabaseUnavailable (503); other errors propagate unchanged after the rollback.

        with unit_of_work() as uow:
            storage.put_object(key, data, content_type)
            uow.on_rollback(storage.delete_object, key)
            db.session.add(row)
    """
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    uow = UnitOfWork()
    reset_token = _current.set(uow)
    try:
        yield uow
        db.session.commit()
    except BaseException as exc:
        try:
            db.session.rollback()
        except Exception:
            log.exception("rollback failed")
        uow._compensate()
        if isinstance(exc, (OperationalError, InterfaceError)):
            raise DatabaseUnavailable() from exc
        raise
    finally:
        _current.reset(reset_token)


def hold_write_lock() -> None:
    """Make the current transaction SQLite's one writer now, before it reads what it is about to decide on.

    SQLite serialises writers, but the driver begins a transaction only at its first write: a check read
    before that could be stale by the time the write lands (BEGIN IMMEDIATE closes that gap). PostgreSQL
    locks the rows read instead (SELECT ... FOR UPDATE); there this does nothing.
    """
    connection = db.session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def identity_of(row: Any) -> Any:
    """A loaded row's primary key from the session's identity map: no query, so also for a row deleted since."""
    return inspect(row).identity[0]
