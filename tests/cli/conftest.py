"""The CLI against a real database of each kind: a fresh SQLite file, or a fresh database
on the throwaway PostgreSQL server, per test.

Commands open their own connections and commit, so test data is seeded in a committed
transaction (`Cli.seed()`), never through the rolled-back `db` fixture.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from optout.cli import app
from optout.clock import utcnow
from optout.db.engine import create_engine
from optout.services.sequences.definitions import Step
from tests.conftest import migrated_database
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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind for one test (a copy of the session's
    migrated template)."""
    with migrated_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def wait_until_serving(server: subprocess.Popen[str], base: str, *, seconds: float = 60) -> None:
    """Until `optout serve` answers /healthz; fails with its output if it exits first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        assert time.monotonic() < deadline, "optout serve did not start"
        time.sleep(0.1)
