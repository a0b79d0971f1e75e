"""The CLI against a real database of each kind: a fresh SQLite file, or a fresh database
on the throwaway PostgreSQL server, per test.

Commands open their own connections and commit, so test data is seeded in a committed
transaction (`Cli.seed()`), never through the rolled-back `db` fixture.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from optout.cli import app
from optout.clock import utcnow
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.services.sequences import Step
from tests.conftest import postgres_server_url
from tests.factories import World

WORKSPACE = "acme-sales"
# One email step, written in the template language sequences accept.
STEPS = (Step(kind="email", subject="Hello {{ person.first_name }}", body_text="Hi there"),)
ACTOR = "tester@cli"


@dataclass
class Cli:
    url: str
    # Seeds happen a little in the past, so what a command does at the clock's now comes after.
    now: datetime = field(
        default_factory=lambda: utcnow().replace(microsecond=0) - timedelta(hours=1)
    )
    runner: CliRunner = field(default_factory=CliRunner)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "OPTOUT_DATABASE_URL": self.url,
            "OPTOUT_WORKSPACE": WORKSPACE,
            "OPTOUT_ACTOR": ACTOR,
            "COLUMNS": "200",
            **extra,
        }

    def run(self, *args: str, **env: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env(**env))

    def ok(self, *args: str) -> Result:
        """Run a command that must succeed; show its output when it does not."""
        result = self.run(*args)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    @contextmanager
    def seed(self) -> Iterator[World]:
        """A World in workspace `acme-sales`, committed when the block ends."""
        engine = create_engine(self.url)
        try:
            with engine.begin() as db:
                yield World(db, self.now, slug=WORKSPACE)
        finally:
            engine.dispose()

    def scalar(self, statement: sa.Executable) -> Any:
        engine = create_engine(self.url)
        try:
            with engine.connect() as db:
                return db.scalar(statement)
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating once, not per test)."""
    path = tmp_path_factory.mktemp("cli-template") / "optout.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated PostgreSQL database that each test's database is created from."""
    server = postgres_server_url()
    name = f"optout_cli_template_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(server).set(drivername="postgresql+psycopg", database=name)
    engine = create_engine(url.render_as_string(hide_password=False))
    upgrade(engine)
    engine.dispose()
    try:
        yield name
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind for one test."""
    if request.param == "sqlite":
        path = tmp_path / "optout.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    server = postgres_server_url()
    name = f"optout_cli_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = sa.make_url(server).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)
