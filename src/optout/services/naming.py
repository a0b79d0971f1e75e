"""Looking up named objects of a workspace (exclusions, audiences, sequences, ...)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.errors import Conflict, InvalidInput, NotFound


def clean_name(name: str, *, what: str) -> str:
    text = " ".join(name.split())
    if not text:
        raise InvalidInput(f"{_a(what)} needs a name: type one of up to 200 characters").at(
            "name", "Name"
        )
    if len(text) > 200:
        raise InvalidInput(
            f"{_a(what)} name has at most 200 characters; this one has {len(text):,}",
            value=name,
        ).at("name", "Name")
    return text


def _a(what: str) -> str:
    """`what` with its article: "a sequence", "an exclusion"."""
    return f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"


def ensure_unique(
    db: Connection, table: sa.Table, *, workspace_id: int, name: str, what: str
) -> None:
    if db.scalar(
        sa.select(table.c.id).where(table.c.workspace_id == workspace_id, table.c.name == name)
    ):
        raise Conflict(
            f"{_a(what)} named {name!r} exists already: choose another name", value=name
        ).at("name", "Name")


def row_by_name(
    db: Connection, table: sa.Table, *, workspace_id: int, name: str, what: str
) -> dict[str, Any]:
    row = (
        db.execute(
            sa.select(table).where(table.c.workspace_id == workspace_id, table.c.name == name)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no {what} named {name!r}")
    return dict(row)


def row_by_id(
    db: Connection, table: sa.Table, *, workspace_id: int, id: int, what: str
) -> dict[str, Any]:
    row = (
        db.execute(sa.select(table).where(table.c.workspace_id == workspace_id, table.c.id == id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no {what} with id {id}")
    return dict(row)
