"""Temporary tables that hold a set of ids for the few statements of one operation.

A set computed once (say, the enrollments an exclusion removes) is staged here
so that the events, the cancelled emails and the status change all see exactly
the same rows, without re-running the query that found them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_metadata = sa.MetaData()


def id_table(name: str) -> sa.Table:
    """A temporary table of one column, the primary key `id`: a set of ids (people,
    enrollments, emails, companies) staged for the few statements of one operation, filled
    with `stage` or `stage_ids`. Temporary tables live per connection, so one name serves
    every connection at once."""
    return sa.Table(
        name, _metadata, sa.Column("id", sa.Integer, primary_key=True), prefixes=["TEMPORARY"]
    )


enrollment_targets = sa.Table(
    "optout_enrollment_targets",
    _metadata,
    sa.Column("enrollment_id", sa.Integer, primary_key=True),
    sa.Column("exclusion_id", sa.Integer),
    prefixes=["TEMPORARY"],
)


def stage(db: Connection, table: sa.Table, select: sa.Select[Any]) -> int:
    """Empty `table` (creating it for this connection if needed) and fill it from `select`."""
    table.create(db, checkfirst=True)
    db.execute(table.delete())
    names = [c.name for c in select.selected_columns]
    db.execute(table.insert().from_select(names, select))
    analyzed(db, table)
    # INSERT ... SELECT reports no row count through every driver (psycopg 3 gives -1).
    return int(db.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def analyzed(db: Connection, table: sa.Table) -> None:
    """Give the planner the size of a freshly filled staged table. Neither database keeps
    statistics for temporary tables on its own: SQLite then assumes a million rows and
    PostgreSQL a few thousand, and either may scan a large table to probe a small staged
    one (every enrollment of the workspace for the hundred a worker cancels)."""
    schema = "temp." if db.dialect.name == "sqlite" else ""
    db.exec_driver_sql(f"ANALYZE {schema}{table.name}")


new_enrollments = id_table("optout_new_enrollments")
requested_people = id_table("optout_requested_people")
previewed_people = id_table("optout_previewed_people")
claimed_emails = id_table("optout_claimed_emails")


recheck_candidates = sa.Table(
    "optout_recheck_candidates",
    _metadata,
    sa.Column("enrollment_id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)

rule_hits = sa.Table(
    "optout_rule_hits",
    _metadata,
    sa.Column("enrollment_id", sa.Integer, nullable=False),
    sa.Column("exclusion_id", sa.Integer),  # NULL: a check that is not an exclusion
    prefixes=["TEMPORARY"],
)


def stage_ids(db: Connection, table: sa.Table, ids: Sequence[int]) -> int:
    """Empty `table` and fill its `id` column from `ids` with one executemany."""
    return stage_rows(db, table, [{"id": i} for i in ids])


def stage_rows(db: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Empty `table` (creating it for this connection if needed), fill it from `rows` with
    one executemany, and analyse it: the one way every operation stages rows it computed
    in Python (a CSV part, a CRM page, the rules a claim hit). Returns the number of rows.

    It always analyses, even a table of a handful of rows: without statistics SQLite takes
    a staged table for a million rows and PostgreSQL for a few thousand, and a join to a
    large table may then walk the large one. The cost is one statement that reads the
    staged rows once (BENCHMARKS: "One way to stage rows")."""
    table.create(db, checkfirst=True)
    db.execute(table.delete())
    if rows:
        db.execute(table.insert(), list(rows))
    analyzed(db, table)
    return len(rows)
