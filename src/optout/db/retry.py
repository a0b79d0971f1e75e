"""Trying a short unit of work again when the database is busy, within a bounded time.

For the paths that must not fail while the product is up (a recipient's unsubscribe, a
mailed unsubscribe request): SQLite answers "database is locked" when another writer
holds the lock past the wait, PostgreSQL refuses a transaction on a serialization
failure or a deadlock. Each is transient; the unit of work is run again, whole, in a
new transaction, with a growing pause, until `budget` seconds have gone.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db.engine import SQLITE_BUSY_TIMEOUT_MS

T = TypeVar("T")

BUDGET_SECONDS = 20.0  # the longest a click waits for its answer, however busy
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0
MIN_MAKE_WAY = 0.05
MAX_MAKE_WAY = 1.0
MAX_GIVE_WAY = 5.0
PROBE_SECONDS = 1.0  # each look, at start-up, for a write lock another process holds
# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
_PG_TRANSIENT = frozenset({"40001", "40P01", "55P03"})
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def is_busy(error: BaseException) -> bool:
    """Whether `error` says the database was busy (and the same work may succeed again)."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    original = error.orig
    if getattr(original, "sqlstate", None) in _PG_TRANSIENT:
        return True
    text = str(original).lower()
    return any(phrase in text for phrase in _SQLITE_BUSY)


def retrying(
    engine: Engine,
    work: Callable[[Connection], T],
    *,
    budget: float = BUDGET_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`work` in its own transaction, run again while the database is busy, until `budget`
    seconds have gone; the last busy error is raised after that. On SQLite each attempt
    waits for the write lock no longer than the budget left, so the whole is bounded."""
    deadline = time.monotonic() + budget
    pause = FIRST_PAUSE
    with _waiting_first():
        while True:
            left = deadline - time.monotonic()
            try:
                with _waiting_at_most(engine, left) as connection, connection.begin():
                    return work(connection)
            except sa.exc.DBAPIError as exc:
                left = deadline - time.monotonic()
                if not is_busy(exc) or left <= 0:
                    raise
            sleep(min(pause * (0.5 + random.random()), max(left, 0.0)))
            pause = min(pause * 2, LONGEST_PAUSE)


# Short writes that must not fail (`retrying`) waiting in this process: long work lets
# them go first between its steps (`make_way`).
_turns = threading.Condition()
_waiting = 0


@contextmanager
def _waiting_first() -> Iterator[None]:
    global _waiting
    with _turns:
        _waiting += 1
    try:
        yield
    finally:
        with _turns:
            _waiting -= 1
            _turns.notify_all()


def make_way(engine: Engine, held: float, *, sleep: Callable[[float], None] = time.sleep) -> None:
    """Between the steps of long work on SQLite: pause as long as the last step held the
    write lock (50 ms to a second), then while this process has writers that must not
    fail waiting (an unsubscribe; at most MAX_GIVE_WAY seconds). SQLite wakes waiters by
    polling, not in order, and a loop that begins its next step at once takes the lock
    again before any of them looks. PostgreSQL locks rows, not the database: no pause."""
    if engine.dialect.name != "sqlite":
        return
    sleep(min(max(held, MIN_MAKE_WAY), MAX_MAKE_WAY))
    with _turns:  # and whoever must not fail goes first, within bounds
        _turns.wait_for(lambda: _waiting == 0, timeout=MAX_GIVE_WAY)


@contextmanager
def _waiting_at_most(engine: Engine, seconds: float) -> Iterator[Connection]:
    """A connection whose SQLite lock wait is at most `seconds` (at least 10 ms), put back
    to the usual wait when it returns to the pool."""
    with engine.connect() as connection:
        if engine.dialect.name != "sqlite":
            yield connection
            return
        raw: Any = connection.connection.driver_connection
        raw.execute(f"PRAGMA busy_timeout={max(10, int(seconds * 1000))}")
        try:
            yield connection
        finally:
            try:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            except Exception:
                connection.invalidate()  # never back in the pool with the short wait


def when_writable(
    engine: Engine,
    work: Callable[[], T],
    *,
    limit: float,
    waiting: Callable[[], None],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`work` (a start-up that opens its own transactions: migrations, settings, keys) once
    this process can write. On SQLite another process may hold the write lock for minutes
    (a large import): this looks for the lock every PROBE_SECONDS and runs `work` when it
    is free, again if `work` meets the lock anyway, until `limit` seconds have gone (plus
    at most one usual lock wait); the last busy error is raised after that. `waiting` is
    called once, when the first wait begins. PostgreSQL locks rows and its statements wait
    for them: `work` runs at once."""
    deadline = time.monotonic() + limit
    told = False
    while True:
        try:
            _take_write_lock(engine, min(PROBE_SECONDS, max(deadline - time.monotonic(), 0.0)))
            return work()
        except sa.exc.DBAPIError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        if not told:
            waiting()
            told = True
        sleep(FIRST_PAUSE)


def _take_write_lock(engine: Engine, seconds: float) -> None:
    """Take SQLite's write lock and give it back at once, waiting at most `seconds`; the
    busy error when another process keeps it."""
    if engine.dialect.name != "sqlite":
        return
    with _waiting_at_most(engine, seconds) as connection:
        connection.begin().rollback()  # BEGIN IMMEDIATE; nothing written, nothing committed
