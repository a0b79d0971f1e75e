"""Trying a short unit of work again when the database is busy, within a bounded time.

For the paths that must not fail while the product is up (a recipient's unsubscribe, a
mailed unsubscribe request): SQLite answers "database is locked" when another writer
holds the lock past the wait, PostgreSQL refuses a transaction on a serialization
failure or a deadlock. Each is transient; the unit of work is run again, whole, in a
new transaction, with a growing pause, until `budget` seconds have gone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db.engine import SQLITE_BUSY_TIMEOUT_MS

T = TypeVar("T")

BUDGET_SECONDS = 10.0
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0
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
