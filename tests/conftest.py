"""Fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from OPTOUT_TEST_POSTGRES_URL (scripts/run-tests.sh starts a
throwaway server). Without it the PostgreSQL half is skipped with one line that
says why, except in CI (CI=true), where it fails: a green CI must have run it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from tests.factories import World

NOW = datetime(2026, 11, 2, 9, 0, 0)


def missing(reason: str) -> NoReturn:
    """Skip a test whose server or browser is missing here; in CI (CI=true), fail it: a
    green CI must have run every test."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def postgres_server_url() -> str:
    url = os.environ.get("OPTOUT_TEST_POSTGRES_URL", "")
    if not url:
        missing("no PostgreSQL for tests: OPTOUT_TEST_POSTGRES_URL is unset (make test starts one)")
    return url


def _new_postgres_engine() -> tuple[Engine, Engine, str]:
    server = postgres_server_url()
    name = f"optout_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(server).set(drivername="postgresql+psycopg", database=name)
    return create_engine(url.render_as_string(hide_password=False)), admin, name


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated database of each kind, shared by the session."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "optout.sqlite3"
        sqlite = create_engine(f"sqlite:///{path}")
        upgrade(sqlite)
        yield sqlite
        sqlite.dispose()
        return
    postgres, admin, name = _new_postgres_engine()
    upgrade(postgres)
    yield postgres
    postgres.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A new, empty, migrated database for one test: for code that commits, like the
    worker and the web app, where a rolled-back transaction would hide the data."""
    if request.param == "sqlite":
        sqlite = create_engine(f"sqlite:///{tmp_path / 'optout.sqlite3'}")
        upgrade(sqlite)
        yield sqlite
        sqlite.dispose()
        return
    postgres, admin, name = _new_postgres_engine()
    upgrade(postgres)
    yield postgres
    postgres.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def world(db: Connection, now: datetime) -> World:
    return World(db, now)
