"""Build the benchmark database once and cache it.

SQLite: a file under `var/bench/` named by the parameters and a fingerprint of the generator
and of the columns it writes, written to a temporary name and renamed when complete, so an
interrupted run is never reused. A reused database is brought to the newest schema by the
project's migrations, as a customer's database would be, so a new migration does not force
a rebuild. Rows go in with `executemany` inside one transaction.
PostgreSQL: the database at the given URL is emptied and filled with COPY; a `bench_meta`
row records what it holds, so `--reuse` can keep it.

The schema comes from the project's migrations (`optout.db.migrate.upgrade`); indexes
declared in `optout.db.tables` but not yet in a migration are created too, and named.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bench.generate import COLUMNS, Generator, Params, Row, World, check_canonical
from bench.rules import exclusion_rows
from optout.db import tables as t
from optout.db.engine import MIGRATING, create_engine
from optout.db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench"
CHUNK = 20_000


class Progress:
    """One line per step on stderr, with the time since the start."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def say(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.start:7.1f}s] {message}", file=sys.stderr, flush=True)


def fingerprint() -> str:
    """Changes when the generator or the columns it writes change: a cached file is then
    rebuilt. Other schema changes reach a reused file through `upgrade`."""
    digest = hashlib.sha256(json.dumps(COLUMNS, sort_keys=True).encode())
    for name in ("generate.py", "rules.py", "shapes.py"):
        digest.update((ROOT / "bench" / name).read_bytes())
    return digest.hexdigest()[:10]


def sqlite_path(params: Params) -> Path:
    return CACHE / f"optout-bench-{params.key()}-{fingerprint()}.sqlite3"


def _index_exists(connection: Connection, name: str) -> bool:
    catalog = (
        "SELECT 1 FROM pg_indexes WHERE indexname = :name"
        if connection.dialect.name == "postgresql"
        else "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :name"
    )
    return connection.execute(sa.text(catalog), {"name": name}).first() is not None


def ensure_indexes(engine: Engine) -> list[str]:
    """Create the indexes of `optout.db.tables` that the migrations do not (yet) have."""
    created = []
    with engine.begin() as connection:
        existing = {
            index["name"]
            for table in t.metadata.sorted_tables
            for index in sa.inspect(connection).get_indexes(table.name)
        }
        for table in t.metadata.sorted_tables:
            for index in table.indexes:
                # Reflection leaves out expression indexes (SQLite): ask by name too.
                if index.name not in existing and not _index_exists(connection, str(index.name)):
                    index.create(connection)
                    created.append(str(index.name))
    return created


def prepare(params: Params, *, url: str | None, reuse: bool, progress: Progress) -> str:
    """The URL of a database holding the generated workspace for `params`."""
    if url is None:
        path = sqlite_path(params)
        url = f"sqlite:///{path}"
        if reuse and path.exists():
            progress.say(f"reusing {path.relative_to(ROOT)}")
            _upgrade(url)
            return url
        _build_sqlite(params, path, progress)
        return url
    engine = create_engine(url)
    try:
        if reuse and _meta(engine) == _meta_key(params):
            progress.say("reusing the database at the given URL (bench_meta matches)")
            upgrade(engine)
            return url
        if engine.dialect.name == "sqlite":
            engine.dispose()
            database = sa.make_url(url).database
            assert database, "a SQLite URL needs a file"
            _build_sqlite(params, Path(database), progress)
        else:
            _build_postgresql(params, engine, progress)
    finally:
        engine.dispose()
    return url


def _upgrade(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _meta_key(params: Params) -> str:
    return f"{params.key()}-{fingerprint()}"


def _meta(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("bench_meta"):
            return None
        return connection.exec_driver_sql("SELECT key FROM bench_meta").scalar()


def generate(params: Params, progress: Progress) -> tuple[Generator, Iterable[list[Row]]]:
    gen = Generator(params)
    gen.sequences()
    gen.companies()
    progress.say(f"generated {params.companies:,} companies")
    return gen, gen.people()


def _finish(gen: Generator, progress: Progress) -> None:
    gen.opportunities()
    gen.suppressions()
    check_canonical(gen.world, random.Random(1))
    progress.say("emails and domains checked canonical on a sample through optout.normalize")
    gen.tables["exclusions"] = exclusion_rows(gen.rng, gen.world, gen.params.exclusions)
    progress.say(f"generated and validated {gen.params.exclusions:,} exclusions")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S.%f}"  # SQLAlchemy's storage format for DateTime
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _build_sqlite(params: Params, path: Path, progress: Progress) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{tmp}")
    upgrade(engine)
    extra = ensure_indexes(engine)
    engine.dispose()
    progress.say(f"schema migrated; indexes from tables.py not in migrations: {extra or 'none'}")
    raw = sqlite3.connect(tmp, isolation_level=None)
    raw.execute("PRAGMA journal_mode=DELETE")
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute("PRAGMA cache_size=-1000000")
    raw.execute("BEGIN")

    def insert(table: str, rows: Iterable[Row]) -> None:
        columns = COLUMNS[table]
        sql = (
            f"INSERT INTO {table} ({', '.join(_quoted(c) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        batch: list[Row] = []
        for row in rows:
            batch.append(tuple(_sqlite_value(v) for v in row))
            if len(batch) >= CHUNK:
                raw.executemany(sql, batch)
                batch = []
        raw.executemany(sql, batch)

    _load(params, insert, progress)
    raw.execute("CREATE TABLE bench_meta (key TEXT NOT NULL)")
    raw.execute("INSERT INTO bench_meta VALUES (?)", (_meta_key(params),))
    raw.execute("COMMIT")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.close()
    os.replace(tmp, path)
    progress.say(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def _quoted(column: str) -> str:
    return f'"{column}"'


def _load(params: Params, insert: Any, progress: Progress) -> World:
    gen, people = generate(params, progress)
    for table in ("workspaces", "rulesets", "sequences", "sequence_steps", "companies"):
        insert(table, gen.tables[table])
    done = 0
    for chunk in people:
        insert("people", chunk)
        done += len(chunk)
        if done % 100_000 == 0 or done == params.people:
            progress.say(f"people {done:,}/{params.people:,}")
    _finish(gen, progress)
    for table in (
        "opportunities",
        "opportunity_contacts",
        "suppressions",
        "enrollments",
        "outbound_emails",
        "exclusions",
    ):
        insert(table, gen.tables[table])
        progress.say(f"{table}: {len(gen.tables[table]):,} rows")
    return gen.world


def _build_postgresql(params: Params, engine: Engine, progress: Progress) -> None:
    with engine.connect() as connection:
        # No decision index to keep true in an emptied schema.
        connection.info[MIGRATING] = True
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
        connection.commit()
        connection.info.pop(MIGRATING)
    upgrade(engine)
    extra = ensure_indexes(engine)
    progress.say(f"schema migrated; indexes from tables.py not in migrations: {extra or 'none'}")
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert connection is not None
        cursor = connection.cursor()

        def insert(table: str, rows: Iterable[Row]) -> None:
            columns = ", ".join(_quoted(c) for c in COLUMNS[table])
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([json.dumps(v) if isinstance(v, dict) else v for v in row])

        _load(params, insert, progress)
        cursor.execute("CREATE TABLE bench_meta (key text NOT NULL)")
        cursor.execute("INSERT INTO bench_meta VALUES (%s)", (_meta_key(params),))
        for table in COLUMNS:
            if "id" in COLUMNS[table]:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
        connection.commit()
        connection.autocommit = True
        cursor.execute("ANALYZE")
        connection.autocommit = False
    finally:
        raw.close()
    progress.say("loaded into PostgreSQL with COPY and ran ANALYZE")
