"""One of the caller's own rows by id: someone else's is "not found" as well, so nothing tells what exists."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute

from db import db
from models import User
from utils.errors import NotFound


def get_owned(owner_column: InstrumentedAttribute, row_id: uuid.UUID, owner: User, *, noun: str) -> Any:
    """The row of owner_column's model with this id, if owner_column names owner; else NotFound ("No such <noun>.")."""
    row = db.session.get(owner_column.class_, row_id)
    if row is None or getattr(row, owner_column.key) != owner.id:
        raise NotFound(f"No such {noun}.")
    return row
