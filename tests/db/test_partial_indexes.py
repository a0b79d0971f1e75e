"""The partial unique indexes `optout.db.tables` describes are partial on both databases.

Their PostgreSQL condition is attached when optout makes a PostgreSQL engine
(`tables.use_postgresql`), so that a command on SQLite never loads PostgreSQL's dialect;
an index made from the description (`bench.load` makes the missing ones so) must still be
the partial one the migrations made, not a plain unique index that would refuse a
person's second, finished, enrollment in a sequence.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex

from optout.db import tables as t

CONDITIONS = {
    "uq_enrollments_active": "status IN ('not_started', 'in_progress')",
    "uq_crm_writebacks_pending": "status = 'pending'",
}


def _migrated_definition(engine: Engine, name: str) -> str:
    catalog = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        if engine.dialect.name == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    )
    with engine.connect() as db:
        return str(db.scalar(sa.text(catalog), {"name": name}))


def test_R26_the_unique_indexes_of_active_enrollments_and_pending_writebacks_are_partial(
    engine: Engine,
) -> None:
    indexes = {
        str(index.name): index
        for table in (t.enrollments, t.crm_writebacks)
        for index in table.indexes
    }
    for name, condition in CONDITIONS.items():
        described = str(CreateIndex(indexes[name]).compile(dialect=engine.dialect))
        assert described.startswith("CREATE UNIQUE INDEX"), described
        assert described.endswith(f"WHERE {condition}"), described
        assert " WHERE " in _migrated_definition(engine, name).upper()
