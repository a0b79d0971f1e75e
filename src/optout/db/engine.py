"""Engines and transactions: SQLite (file, WAL, foreign keys, busy timeout) or PostgreSQL."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from optout.db import conflicts

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_MMAP_BYTES = 1 << 30


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url` with the pragmas and pool settings optout relies on."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _create_private(Path(database))
        engine = sa.create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
        _run_before_commit(engine)
        _count_commits(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    from optout.db import tables  # its partial indexes' conditions in PostgreSQL's words

    tables.use_postgresql()
    # JIT compiling pays off for long analytical queries; ours are many short ones whose
    # estimated cost still crosses jit_above_cost (a staged table has no statistics), and
    # compiling then took 0.7 s of a 0.7 s one-person enrollment at 1M people.
    given = parsed.query.get("options")
    options = " ".join(o for o in (given if isinstance(given, str) else "", "-c jit=off") if o)
    connect_args = {"options": options, **kwargs.pop("connect_args", {})}
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    _run_before_commit(engine)
    _count_commits(engine)
    return engine


def _create_private(database: Path) -> None:
    """Create the database file readable by its owner only (0600), if it is not there:
    SQLite gives the -wal and -shm files it makes beside it the same mode."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# What every writing transaction brings up to date just before it commits, whichever code
# path wrote: registered by the layers above storage (the decision index's re-match of the
# rows its writes queued, `optout.services`), so storage imports none of them.
_BEFORE_COMMIT: list[Callable[[Connection], None]] = []


def before_commit_hooks() -> tuple[Callable[[Connection], None], ...]:
    """What runs before each commit of a writing transaction, in order."""
    return tuple(_BEFORE_COMMIT)


def before_every_commit(hook: Callable[[Connection], None]) -> None:
    """Run `hook` on the connection of every writing transaction just before it commits
    (not a read transaction's, not a migration's), after the hooks registered before it."""
    if hook not in _BEFORE_COMMIT:
        _BEFORE_COMMIT.append(hook)


def _run_before_commit(engine: Engine) -> None:
    @event.listens_for(engine, "commit")
    def _on_commit(connection: Connection) -> None:
        if not (connection.info.get(READ_ONLY) or connection.info.get(MIGRATING)):
            for hook in tuple(_BEFORE_COMMIT):
                hook(connection)


def _count_commits(engine: Engine) -> None:
    """Tell the unit of work being run that it committed (`optout.db.conflicts`): after
    that, a conflict no longer runs it again whole."""

    @event.listens_for(engine, "commit")
    def _on_commit(connection: Connection) -> None:
        conflicts.note_commit()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, so BEGIN can be IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Read the file through a memory map: a scan of a large table (the eligible set
        # over a million people) is then not a read() call per page. Address space only.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the lock up front: no deadlock-prone upgrade from a read lock.
        # Readers (`read_transaction`) begin deferred and read a snapshot.
        if connection.info.get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One unit of work: everything commits together or nothing does."""
    with engine.begin() as connection:
        yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A unit of work that only reads. On SQLite it begins DEFERRED, so it reads its own
    snapshot and never waits behind the write lock; nothing it does is committed."""
    with engine.connect() as connection:
        # `info` belongs to the pooled driver connection: the mark must not outlive this use.
        connection.info[READ_ONLY] = True
        try:
            with connection.begin() as unit:
                yield connection
                unit.rollback()
        finally:
            connection.info.pop(READ_ONLY, None)


READ_ONLY = "optout_read_only"
MIGRATING = "optout_migrating"  # the schema may not have the index's tables yet


def is_postgresql(connection: Connection | Engine) -> bool:
    return connection.dialect.name == "postgresql"
