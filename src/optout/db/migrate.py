"""Bring a database to the current schema with Alembic, from the first table on."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from optout.db import statistics
from optout.db.engine import MIGRATING

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.connect() as connection:
        connection.info[MIGRATING] = True
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if statistics.missing(connection) and _has_rows(connection):
                    statistics.analyze(connection)
        finally:
            connection.info.pop(MIGRATING, None)


def downgrade(engine: Engine, revision: str) -> None:
    """Take a database back to `revision` (each migration says what its downgrade keeps)."""
    config = alembic_config()
    with engine.connect() as connection:
        connection.info[MIGRATING] = True
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.downgrade(config, revision)
        finally:
            connection.info.pop(MIGRATING, None)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from the difference between the tables and `engine`."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


def _has_rows(connection: Connection) -> bool:
    """A database with data worth analyzing (an empty one would teach the planner that
    every table is tiny)."""
    inspector = sa.inspect(connection)
    if not inspector.has_table("people"):
        return False
    count = connection.exec_driver_sql(
        f"SELECT count(*) FROM (SELECT 1 FROM people LIMIT {statistics.BULK_ROWS})"
    ).scalar()
    return bool(count and count >= statistics.BULK_ROWS)
