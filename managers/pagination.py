"""Lists: page-numbered (or cursor-continued) slices of a query with the total, and the filters that narrow them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from db import db
from managers.transactions import unit_of_work
from utils.cursor import Cursor

# The (timestamp, id) columns a list is ordered by, both descending: what a cursor refers to.
Keyset = tuple[InstrumentedAttribute, InstrumentedAttribute]


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    total: int
    page: int | None  # None when the page was asked for by cursor
    per_page: int
    next_cursor: str | None = None  # only for lists paged by keyset, and only when more items follow
    # Only for lists paged by keyset: continue the other way (before=) to the newer items, when there are any.
    previous_cursor: str | None = None

    @property
    def pages(self) -> int:
        return -(-self.total // self.per_page) if self.total else 0


def paginate(
    query: Select,
    count_query: Select,
    page: int,
    per_page: int,
    *,
    keyset: Keyset | None = None,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> Page:
    """Run one page of an ordered query and count what the filters match (two queries, whatever the page).

    keyset: the (timestamp, id) columns query is ordered by, newest first. With it the page carries
    next_cursor when more items follow (one extra row is read to know), and after=Cursor continues
    right behind that item instead of at (page - 1) * per_page, which the database has to walk past.
    before=Cursor (from previous_cursor) gives the per_page items just newer than that item, for
    paging back towards the newest.
    """
    total = db.session.scalar(count_query) or 0
    if before is not None:
        return _page_before(query, total, per_page, keyset, before)
    if after is not None:
        if keyset is None:
            raise ValueError("a cursor needs the keyset the list is ordered by")
        query = query.where(tuple_(*keyset) < (after.at, after.id))
        offset = 0
    else:
        offset = (page - 1) * per_page
    limit = per_page + 1 if keyset is not None else per_page
    items = list(db.session.scalars(query.limit(limit).offset(offset)).unique())
    next_cursor = None
    if len(items) > per_page:
        items = items[:per_page]
        at_column, id_column = keyset
        last = items[-1]
        next_cursor = Cursor(getattr(last, at_column.key), getattr(last, id_column.key)).encode()
    return Page(
        items=items,
        total=total,
        page=None if after is not None else page,
        per_page=per_page,
        next_cursor=next_cursor,
        previous_cursor=_cursor_of(items[0], keyset) if after is not None and items else None,
    )


def _cursor_of(item: Any, keyset: Keyset) -> str:
    at_column, id_column = keyset
    return Cursor(getattr(item, at_column.key), getattr(item, id_column.key)).encode()


def _page_before(query: Select, total: int, per_page: int, keyset: Keyset | None, before: Cursor) -> Page:
    """The per_page items just newer than before, newest first: read oldest first from the cursor, then turned."""
    if keyset is None:
        raise ValueError("a cursor needs the keyset the list is ordered by")
    newer = query.where(tuple_(*keyset) > (before.at, before.id)).order_by(None).order_by(*keyset)
    items = list(db.session.scalars(newer.limit(per_page + 1)).unique())
    more_newer = len(items) > per_page
    items = items[:per_page][::-1]
    return Page(
        items=items,
        total=total,
        page=None,
        per_page=per_page,
        next_cursor=_cursor_of(items[-1], keyset) if items else None,
        previous_cursor=_cursor_of(items[0], keyset) if items and more_newer else None,
    )


def _reload_after_commit(page: Page, query: Select, ids: list) -> Page:
    """Load a page's rows again in one query after a commit expired them (else each would reload alone).

    ids: the rows' primary keys, taken before the commit (reading them after would reload each row).
    """
    if ids:
        entity = query.column_descriptions[0]["entity"]
        db.session.scalars(query.where(entity.id.in_(ids)).limit(None).offset(None)).unique().all()
    return page


def list_page(
    query: Select,
    conditions: Sequence[Any],
    page: int,
    per_page: int,
    *,
    audit: Callable[[Page], Any] | None = None,
    count: Select | None = None,
    **cursor: Any,
) -> Page:
    """One page of an ordered query narrowed by conditions, with the count of everything they match.

    audit: records who read the page (an admin reading others' records). It is committed at once,
    and the page's rows, expired by that commit, are loaded again in one query.
    count: the total from something cheaper than counting the matching rows, where there is such a thing.
    cursor: keyset=, after=, before= as paginate takes them.
    """
    entity = query.column_descriptions[0]["entity"]
    query = query.where(*conditions)
    total = count if count is not None else count_of(entity, *conditions)
    result = paginate(query, total, page, per_page, **cursor)
    if audit is None:
        return result
    ids = [row.id for row in result.items]  # read before the commit expires them
    with unit_of_work():
        audit(result)
    return _reload_after_commit(result, query, ids)


def count_of(model, *conditions) -> Select:
    return select(func.count()).select_from(model).where(*conditions)


class ListFilters:
    """Base of the filter dataclasses: a None field means "any"."""

    @classmethod
    def of(cls, query: Mapping[str, Any]) -> Self:
        """The filters a loaded query names; its other keys (paging) are left out."""
        return cls(**{field.name: query.get(field.name) for field in fields(cls)})

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
