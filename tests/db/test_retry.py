"""A busy database is tried again within a bounded time (DESIGN guarantee 6): SQLite's
"database is locked" and PostgreSQL's serialization failures and deadlocks are transient;
any other error is not retried."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.db.retry import MAX_MAKE_WAY, MIN_MAKE_WAY, is_busy, make_way, retrying


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _wrapped(original: Exception) -> sa.exc.DBAPIError:
    return sa.exc.OperationalError("INSERT ...", {}, original)


def test_busy_errors_are_recognised_and_others_are_not() -> None:
    assert is_busy(_wrapped(sqlite3.OperationalError("database is locked")))
    assert is_busy(_wrapped(_PgError("40001")))
    assert is_busy(_wrapped(_PgError("40P01")))
    assert not is_busy(_wrapped(sqlite3.OperationalError("no such table: people")))
    assert not is_busy(_wrapped(_PgError("23505")))
    assert not is_busy(ValueError("database is locked"))


def test_work_is_tried_again_while_busy_then_succeeds(engine: Engine) -> None:
    attempts: list[int] = []

    def work(db: Connection) -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise _wrapped(_PgError("40001"))
        return int(db.scalar(sa.select(sa.literal(7))) or 0)

    assert retrying(engine, work, sleep=lambda _: None) == 7
    assert len(attempts) == 3


def test_other_errors_are_raised_at_once(engine: Engine) -> None:
    attempts: list[int] = []

    def work(db: Connection) -> None:
        attempts.append(1)
        raise _wrapped(_PgError("23505"))

    with pytest.raises(sa.exc.OperationalError):
        retrying(engine, work, sleep=lambda _: None)
    assert len(attempts) == 1


def test_a_database_busy_past_the_budget_raises_the_busy_error(engine: Engine) -> None:
    def work(db: Connection) -> None:
        raise _wrapped(sqlite3.OperationalError("database is locked"))

    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError) as caught:
        retrying(engine, work, budget=0.3)

    assert is_busy(caught.value)
    assert time.monotonic() - started < 2


def test_sqlite_waits_for_a_lock_held_a_moment_and_no_longer_than_the_budget(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/lock.sqlite3")
    upgrade(engine)
    with engine.begin() as db:
        db.exec_driver_sql("CREATE TABLE marks (n INTEGER)")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as db:  # BEGIN IMMEDIATE: the write lock
            db.exec_driver_sql("INSERT INTO marks VALUES (1)")
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    retrying(engine, lambda db: db.exec_driver_sql("INSERT INTO marks VALUES (2)"), budget=5)
    waited = time.monotonic() - started
    holder.join()

    assert 0.3 < waited < 3
    release.clear()
    holding.clear()  # before the holder starts: it may take the lock and say so at once
    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError) as caught:
        retrying(engine, lambda db: db.exec_driver_sql("INSERT INTO marks VALUES (3)"), budget=1)
    assert is_busy(caught.value)
    assert time.monotonic() - started < 2.5
    release.set()
    holder.join()
    with engine.connect() as db:  # the pooled connection waits the usual time again
        assert db.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    engine.dispose()


def test_long_work_makes_way_for_a_waiting_unsubscribe_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/way.sqlite3")
    upgrade(engine)
    pauses: list[float] = []
    inside = threading.Event()

    def unsubscribe(db: Connection) -> None:
        inside.set()
        time.sleep(0.5)

    clicker = threading.Thread(target=lambda: retrying(engine, unsubscribe))
    clicker.start()
    inside.wait(5)
    started = time.monotonic()
    make_way(engine, 3.0, sleep=pauses.append)
    waited = time.monotonic() - started
    clicker.join()
    make_way(engine, 0.0, sleep=pauses.append)

    assert waited > 0.3  # until the unsubscribe was done
    assert pauses == [MAX_MAKE_WAY, MIN_MAKE_WAY]
    engine.dispose()


def test_postgresql_locks_rows_so_long_work_does_not_pause(engine: Engine) -> None:
    pauses: list[float] = []

    make_way(engine, 0.5, sleep=pauses.append)

    assert pauses == ([] if engine.dialect.name == "postgresql" else [0.5])
