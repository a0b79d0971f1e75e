"""Keyset pagination: a page of rows after (or before) the last row seen, ordered by a
sort key and the row id, so a deep page costs what the first one does.

A page is asked for with a cursor taken from the previous one (the sort key and id of its
last or first row), never with an offset: `WHERE key >= :k AND (key > :k OR id > :i)
ORDER BY key, id LIMIT n` reads n rows from the index of the sort key, however far in.
Cursors are opaque, URL-safe text, so a next or previous link survives a reload.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.errors import InvalidInput

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 5000
_KEY = "page_sort_key"


@dataclass(frozen=True)
class Sort:
    """One way a list can be ordered: a non-NULL key, then the row id as tie-break."""

    name: str
    label: str
    key: sa.ColumnElement[Any]
    descending: bool = False


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    sort: str
    next: str | None  # cursor of the page after this one, None on the last
    previous: str | None  # cursor of the page before it, None on the first


def choose(sorts: Sequence[Sort], name: str) -> Sort:
    """The sort called `name` (the first one when empty)."""
    if not name:
        return sorts[0]
    for sort in sorts:
        if sort.name == name:
            return sort
    raise InvalidInput(f"a list can be sorted by {', '.join(s.name for s in sorts)}, not {name!r}")


def encode(key: Any, row_id: int) -> str:
    raw = json.dumps([key, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, row_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidInput("this page link is damaged; start again from the first page") from None
    if not isinstance(row_id, int) or not isinstance(key, (str, int, float)):
        raise InvalidInput("this page link is damaged; start again from the first page")
    return key, row_id


def _beyond(
    key: sa.ColumnElement[Any], ident: sa.ColumnElement[Any], cursor: str, *, ascending: bool
) -> sa.ColumnElement[bool]:
    """Rows strictly after the cursor's row in the scan direction; the first, redundant
    term gives both databases a plain range on the key's index."""
    value, row_id = decode(cursor)
    if key is ident:
        return ident > row_id if ascending else ident < row_id
    if ascending:
        return sa.and_(key >= value, sa.or_(key > value, ident > row_id))
    return sa.and_(key <= value, sa.or_(key < value, ident < row_id))


def fetch(
    db: Connection,
    query: sa.Select[Any],
    *,
    sort: Sort,
    id_column: sa.ColumnElement[Any],
    after: str = "",
    before: str = "",
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page:
    """One page of `query` in `sort` order: the first, the one after cursor `after`, or
    the one before cursor `before`."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"a page holds 1 to {MAX_PAGE_SIZE} rows, not {limit}")
    backwards = bool(before)
    ascending = sort.descending == backwards
    cursor = before or after
    if cursor:
        query = query.where(_beyond(sort.key, id_column, cursor, ascending=ascending))
    order = (sort.key.asc(), id_column.asc()) if ascending else (sort.key.desc(), id_column.desc())
    found = [
        dict(r)
        for r in db.execute(
            query.add_columns(sort.key.label(_KEY)).order_by(*order).limit(limit + 1)
        ).mappings()
    ]
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()
    has_next = True if backwards else more
    has_previous = more if backwards else bool(cursor)
    id_name = id_column.key or "id"
    keys = [(row.pop(_KEY), row[id_name]) for row in found]
    return Page(
        rows=found,
        sort=sort.name,
        next=encode(*keys[-1]) if found and has_next else None,
        previous=encode(*keys[0]) if found and has_previous else None,
    )
