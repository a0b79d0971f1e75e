"""What recording each hand-over and each server answer (two short commits per message)
costs the worker: emails sent per second, against the same pass without those two commits
(the at-least-once send path they replace), measured alternately in the same run.

    .venv/bin/python -m bench.in_doubt [--emails 2000] [--runs 3] [--postgres URL]

Each run sends `--emails` one-step emails in 200-email batches, to a folder outbox and to
an SMTP server (aiosmtpd) on loopback, on a fresh migrated SQLite file (and PostgreSQL
database when `--postgres` names a server).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from unittest import mock

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tests.factories import World
from tests.sending.smtp_server import HOST, Recorder, smtp_server

from optout.config import Settings
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.sending import worker
from optout.sending.transports import OutboxTransport, SmtpTransport, Transport
from optout.services.sequences import definitions

NOW = datetime(2026, 11, 2, 9, 0)
KEYS = ("bench-in-doubt-secret-key-0123456789",)
STEPS = (definitions.Step(kind="email", subject="Hello {{ person.first_name }}", body_text="Hi"),)


@contextmanager
def _database(kind: str, server: str | None, folder: Path) -> Iterator[Engine]:
    if kind == "sqlite":
        engine = create_engine(f"sqlite:///{folder / f'{uuid.uuid4().hex}.sqlite3'}")
        upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    assert server is not None
    name = f"optout_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(server).set(drivername="postgresql+psycopg", database=name)
    engine = create_engine(url.render_as_string(hide_password=False))
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def _queue(engine: Engine, emails: int, slug: str) -> None:
    with engine.begin() as db:
        world = World(db, NOW, slug=slug)
        ids = [world.person(f"p{i}@{slug}.example.com", first_name=f"P{i}") for i in range(emails)]
        world.enroll(world.sequence("Bench", steps=STEPS), ids)


def _pass(engine: Engine, transport: Transport, *, recorded: bool) -> float:
    """Emails sent per second by one worker pass; `recorded=False` skips the two commits."""
    mailer = worker.Mailer(Settings(database_url="unused://", secret_keys=KEYS), transport)
    started = time.perf_counter()
    if recorded:
        result = worker.run_once(engine, mailer=mailer, now=NOW)
    else:
        skip = mock.patch.multiple(
            worker, record_handover=lambda *a, **k: True, record_accepted=lambda *a, **k: None
        )
        with skip:
            result = worker.run_once(engine, mailer=mailer, now=NOW)
    return result.sent / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server URL")
    args = parser.parse_args()
    kinds = ["sqlite", *(["postgresql"] if args.postgres else [])]
    print(f"{args.emails} emails a run, {args.runs} runs each, alternating")
    print("| database | transport | recorded (/s) | not recorded (/s) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch, smtp_server(Recorder()) as port:
        folder = Path(scratch)
        for kind in kinds:
            for name in ("outbox", "smtp"):
                runs: dict[bool, list[float]] = {True: [], False: []}
                with _database(kind, args.postgres, folder) as engine:
                    for run in range(args.runs):
                        for recorded in (True, False):
                            _queue(engine, args.emails, f"r{run}-{int(recorded)}-{name}")
                            transport: Transport = (
                                OutboxTransport(folder / "outbox")
                                if name == "outbox"
                                else SmtpTransport(HOST, port, security="none", retries=0)
                            )
                            with transport:  # type: ignore[attr-defined]
                                runs[recorded].append(_pass(engine, transport, recorded=recorded))
                yes, no = statistics.median(runs[True]), statistics.median(runs[False])
                print(
                    f"| {kind} | {name} | {yes:.0f} ({', '.join(f'{r:.0f}' for r in runs[True])})"
                    f" | {no:.0f} ({', '.join(f'{r:.0f}' for r in runs[False])}) | {yes / no:.2f} |"
                )


if __name__ == "__main__":
    main()
