"""Temporary tables one page of CRM records goes through: each page is staged with one
executemany (`services.staging.stage_rows`), then applied by a few INSERT ... SELECT and
UPDATE ... FROM statements, whatever its size (DESIGN: set-based). `touched` collects the
people whose data changed, for the one re-check of their enrollments at the end (R14)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.services.staging import id_table

touched = id_table("optout_crm_touched")


def reset_touched(db: Connection) -> None:
    touched.create(db, checkfirst=True)
    db.execute(touched.delete())


def touch(db: Connection, people: sa.Select[Any]) -> None:
    """Add the person ids `people` selects (one column) to `touched`."""
    inner = people.subquery()
    column = inner.c[next(iter(inner.c.keys()))]
    db.execute(
        touched.insert().from_select(
            ["id"],
            sa.select(column)
            .where(column.is_not(None), column.not_in(sa.select(touched.c.id)))
            .distinct(),
        )
    )


def changed(target: sa.ColumnElement[Any], given: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The CRM gives a value and it differs from the stored one."""
    return sa.and_(given.is_not(None), target.is_distinct_from(given))
