"""`optout serve` started while another process writes to the database (a large
`optout import people` holds SQLite's write lock for minutes): it says once that it is
waiting, does not answer and does not exit while the lock is held, and starts when the
lock is released; after the wait it was given, it gives up with one clear line. The
service answers the unsubscribe links (R3): a restart during an import must not leave
them unanswered until someone notices it exited.

On PostgreSQL the same start waits behind a table another transaction has locked: its
statements wait for the lock themselves."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from tests.cli.conftest import Cli, wait_until_serving
from tests.conftest import migrated_database

WAITING = "The database is busy"
HELD_SECONDS = 4.0  # how long the test watches the service wait, once it has begun to
START_SECONDS = 300.0  # generous: the machine may be loaded


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _writer_holding_lock(url: str) -> Iterator[None]:
    """Another process's writing transaction: SQLite's write lock (BEGIN IMMEDIATE), or on
    PostgreSQL a lock on the table of the settings a service publishes at start."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database
        db = sqlite3.connect(parsed.database, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            yield
            db.execute("ROLLBACK")
        finally:
            db.close()
        return
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as pg:
        pg.execute("LOCK TABLE deployment_settings IN ACCESS EXCLUSIVE MODE")
        yield
        pg.rollback()


def _start(cli: Cli, tmp_path: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, **cli.env(), "OPTOUT_TRANSPORT_URL": f"outbox:{tmp_path / 'outbox'}"}
    command = [str(Path(sys.executable).parent / "optout"), "serve", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--no-worker", *extra],
        cwd=tmp_path,
        env=env,
        stdout=(tmp_path / "stdout.txt").open("w"),
        stderr=(tmp_path / "stderr.txt").open("w"),
        text=True,
    )


def _answers_health(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _stderr(tmp_path: Path) -> str:
    return (tmp_path / "stderr.txt").read_text()


def test_R3_serve_started_while_another_command_writes_waits_and_starts_when_it_is_done(
    cli: Cli, tmp_path: Path
) -> None:
    sqlite = cli.url.startswith("sqlite")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with _writer_holding_lock(cli.url):
        server = _start(cli, tmp_path, port)
        try:
            if sqlite:  # it says it waits, and goes on waiting
                deadline = time.monotonic() + START_SECONDS
                while WAITING not in _stderr(tmp_path):
                    assert server.poll() is None, _stderr(tmp_path)
                    assert not _answers_health(base)
                    assert time.monotonic() < deadline, "optout serve never said it waits"
                    time.sleep(0.2)
            watched_until = time.monotonic() + HELD_SECONDS
            while time.monotonic() < watched_until:
                assert server.poll() is None, _stderr(tmp_path)
                assert not _answers_health(base)
                time.sleep(0.2)
        except BaseException:
            server.kill()
            server.wait()
            raise
    try:
        wait_until_serving(server, base, seconds=START_SECONDS)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert server.returncode == 0, _stderr(tmp_path)
    said = _stderr(tmp_path)
    assert said.count(WAITING) == (1 if sqlite else 0), said
    if sqlite:
        assert "another optout command" in said
        assert "10 minutes" in said  # the default wait
    assert "Traceback" not in said


@pytest.fixture
def sqlite_cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """SQLite only: PostgreSQL's statements wait for a lock themselves, never busy."""
    with migrated_database(request, "sqlite", tmp_path) as url:
        yield Cli(url)


def test_R3_serve_gives_up_after_the_wait_it_was_given_with_one_clear_line(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    cli = sqlite_cli
    port = _free_port()
    with _writer_holding_lock(cli.url):
        server = _start(cli, tmp_path, port, "--wait-for-database", "3")
        try:
            server.wait(timeout=START_SECONDS)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert not _answers_health(f"http://127.0.0.1:{port}")
    said = _stderr(tmp_path)
    assert server.returncode == 1, said
    assert said.count(WAITING) == 1, said
    lines = [line for line in said.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: the database was still busy after 3 seconds: another optout command is "
        "writing to it. Start the service again once it has finished, or let it wait longer "
        "with --wait-for-database SECONDS."
    ], said
    assert "Traceback" not in said
