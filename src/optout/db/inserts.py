"""An INSERT that skips the rows whose key is there already, in either database's words."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def insert_ignoring_duplicates(db: Connection, table: sa.Table) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for `table`. With `.from_select`, end the SELECT
    with a WHERE or an ORDER BY after any join: SQLite would read `ON CONFLICT` as the
    join's ON."""
    # Each dialect's module is imported where it is used: one on SQLite never loads
    # PostgreSQL's (tens of milliseconds at every start of a command).
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()
