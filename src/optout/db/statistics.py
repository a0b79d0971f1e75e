"""Planner statistics: a database as optout leaves it must plan its queries well.

SQLite keeps no statistics until `ANALYZE` runs; without them it picks the index of a
workspace id over the one a query needs, and answers take seconds instead of
milliseconds. So optout analyzes after every bulk load (imports, CRM syncs, first
migration) and the worker runs `PRAGMA optimize` on a schedule. `analysis_limit` bounds
the work: a sample of each index is enough to choose between them, so it stays well
under a second at a million people. PostgreSQL's autovacuum keeps its own statistics;
after a bulk load it is asked to analyze the tables the load wrote at once.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

BULK_ROWS = 5_000  # a load of at least this many rows refreshes the statistics
ANALYSIS_LIMIT = 2_000  # rows sampled per index by SQLite's ANALYZE
_TABLES = ("people", "companies", "opportunities", "opportunity_contacts", "exclusion_matches")


def analyze(db: Connection) -> None:
    """Refresh the planner statistics now."""
    if db.dialect.name == "sqlite":
        db.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        db.exec_driver_sql("ANALYZE")
    else:
        db.exec_driver_sql("ANALYZE " + ", ".join(_TABLES))


def after_bulk_load(db: Connection, rows: int) -> None:
    """Refresh the statistics when a load wrote enough rows to change the best plan."""
    if rows >= BULK_ROWS:
        analyze(db)


def optimize(db: Connection) -> None:
    """The periodic tune-up: SQLite re-analyzes what the connection's queries showed stale."""
    if db.dialect.name == "sqlite":
        db.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        db.exec_driver_sql("PRAGMA optimize")


def missing(db: Connection) -> bool:
    """True when SQLite has never analyzed this database."""
    if db.dialect.name != "sqlite":
        return False
    found = db.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).scalar()
    return not found
