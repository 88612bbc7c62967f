"""Lists: page-numbered slices of a query with the total, and the filters that narrow them."""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from db import db


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.per_page) if self.total else 0


def paginate(query: Select, count_query: Select, page: int, per_page: int) -> Page:
    """Run one page of an ordered query and count what the filters match (two queries, whatever the page)."""
    total = db.session.scalar(count_query) or 0
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).unique())
    return Page(items=items, total=total, page=page, per_page=per_page)


def reload_after_commit(page: Page, query: Select, ids: list) -> Page:
    """Load a page's rows again in one query after a commit expired them (else each would reload alone).

    ids: the rows' primary keys, taken before the commit (reading them after would reload each row).
    """
    if ids:
        entity = query.column_descriptions[0]["entity"]
        db.session.scalars(query.where(entity.id.in_(ids)).limit(None).offset(None)).unique().all()
    return page


def count_of(model, *conditions) -> Select:
    return select(func.count()).select_from(model).where(*conditions)


class ListFilters:
    """Base of the filter dataclasses: a None field means "any"."""

    def described(self) -> dict[str, Any]:
        """The filters that were set, as JSON-safe values (for the audit trail)."""
        described = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, uuid.UUID):
                value = str(value)
            described[field.name] = value
        return described
