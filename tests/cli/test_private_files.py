"""The files the service makes beside itself are readable by its own user only, whatever
the umask: the SQLite database and the -wal and -shm files SQLite makes beside it, and
the file of generated unsubscribe-link keys."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from optout.config import load_or_create_secret_keys
from optout.db.engine import create_engine, transaction
from optout.db.migrate import upgrade


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_R34_the_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "var" / "optout.sqlite3"
    engine = create_engine(f"sqlite:///{database}")
    try:
        upgrade(engine)
        with transaction(engine) as db:
            db.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
            db.exec_driver_sql("INSERT INTO probe VALUES (1)")
        made = {p.name: mode(p) for p in database.parent.iterdir()}
    finally:
        engine.dispose()

    assert made == {
        "optout.sqlite3": 0o600,
        "optout.sqlite3-wal": 0o600,
        "optout.sqlite3-shm": 0o600,
    }


def test_R34_a_database_file_that_exists_keeps_its_mode(tmp_path: Path) -> None:
    database = tmp_path / "shared.sqlite3"
    database.touch(mode=0o640)
    database.chmod(0o640)
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as db:
        db.exec_driver_sql("SELECT 1")
    engine.dispose()

    assert mode(database) == 0o640


def test_R34_the_generated_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_keys"

    keys = load_or_create_secret_keys(path)

    assert len(keys) == 1
    assert mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_keys"]  # no temporary left
