"""Worker scaling: 1, 2 and 4 `optout worker --once` processes drain one queue of due emails
into a local SMTP server; emails per second for each, the ratio to one worker, and proof
that every email arrived exactly once (by Message-ID at the server, by status in the
database).

Each run starts from the same queue: on PostgreSQL a copy of a template database
(CREATE DATABASE ... TEMPLATE), on SQLite a copy of the file. The workers get the database
URL and nothing else (the SMTP server's URL is published in the database as `optout serve`
does, the link keys are made there by the first worker); they coordinate only through
the database (FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite).

  python -m bench.workers --database-url postgresql+psycopg://postgres@127.0.0.1:54343/postgres
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import due_queue
from bench.commands import bare_environment, start
from bench.load import Progress
from bench.smtp_sink import Sink, running_sink, transport_url
from optout import deployment
from optout.clock import utcnow
from optout.config import Settings
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade

RESULTS = Path(__file__).resolve().parent / "results"
WORKER_TIMEOUT_SECONDS = 3600


class LostOrDuplicated(AssertionError):
    """The run did not deliver every email exactly once."""


@dataclass(frozen=True)
class Run:
    workers: int
    emails: int
    seconds: float  # from starting the processes until the last one exited
    window_seconds: float  # from the first to the last message the server accepted
    per_worker: list[int]  # emails each process reported sent

    @property
    def per_second(self) -> float:
        return self.emails / self.seconds

    @property
    def window_per_second(self) -> float:
        return self.emails / self.window_seconds if self.window_seconds > 0 else float("inf")


class Databases:
    """A queue built once, copied afresh for each run."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = sa.make_url(url)
        self.folder = folder
        self.postgresql = self.url.get_backend_name() == "postgresql"
        self.base = f"optout_bench_workers_{uuid.uuid4().hex[:8]}"

    def _url_of(self, name: str) -> str:
        if self.postgresql:
            return self.url.set(database=name).render_as_string(hide_password=False)
        return f"sqlite:///{self.folder / f'{name}.sqlite3'}"

    def _admin(self) -> sa.Engine:
        return create_engine(
            self.url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
        )

    def build(self, emails: int, batch_note: Progress) -> None:
        if self.postgresql:
            admin = self._admin()
            with admin.connect() as db:
                db.exec_driver_sql(f'CREATE DATABASE "{self.base}"')
            admin.dispose()
        engine = create_engine(self._url_of(self.base))
        try:
            upgrade(engine)
            started = time.perf_counter()
            due_queue.build(engine, emails=emails, now=utcnow())
            batch_note.say(f"queued {emails} due emails in {time.perf_counter() - started:.1f} s")
            if self.postgresql:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                    db.exec_driver_sql("VACUUM ANALYZE")
        finally:
            engine.dispose()

    @contextmanager
    def copy(self, name: str) -> Iterator[str]:
        copy = f"{self.base}_{name}"
        if self.postgresql:
            admin = self._admin()
            with admin.connect() as db:
                db.exec_driver_sql(f'CREATE DATABASE "{copy}" TEMPLATE "{self.base}"')
            try:
                yield self._url_of(copy)
            finally:
                with admin.connect() as db:
                    db.exec_driver_sql(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
                admin.dispose()
            return
        source, target = self.folder / f"{self.base}.sqlite3", self.folder / f"{copy}.sqlite3"
        with sqlite3.connect(source) as original, sqlite3.connect(target) as duplicate:
            original.backup(duplicate)
        try:
            yield self._url_of(copy)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)

    def drop(self) -> None:
        if self.postgresql:
            admin = self._admin()
            with admin.connect() as db:
                db.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.base}" WITH (FORCE)')
            admin.dispose()


def run_workers(url: str, *, workers: int, sink: Sink, port: int, batch: int, folder: Path) -> Run:
    """Start `workers` processes of `optout worker --once`, wait for all, check the result."""
    sink.clear()
    # As `optout serve` does when started with OPTOUT_TRANSPORT_URL: the relay is published
    # in the database, and the workers get nothing but the database URL.
    engine = create_engine(url)
    try:
        deployment.publish(
            Settings(
                database_url=url,
                transport_url=transport_url(port),
                from_environment=frozenset({"transport_url"}),
            ),
            engine,
        )
    finally:
        engine.dispose()
    env = bare_environment(database_url=url)
    log = folder / "workers.log"
    started = time.perf_counter()
    processes = [
        start(
            ["worker", "--once", "--json", "--batch", str(batch)],
            env=env,
            cwd=folder,
            log=log,
            capture_stdout=True,
        )
        for _ in range(workers)
    ]
    outputs = [process.communicate(timeout=WORKER_TIMEOUT_SECONDS)[0] for process in processes]
    seconds = time.perf_counter() - started
    failed = [p.returncode for p in processes if p.returncode != 0]
    if failed:
        raise RuntimeError(f"worker exited with {failed}; see {log}:\n{log.read_text()[-2000:]}")
    per_worker = [int(json.loads(out)["sent"]) for out in outputs]
    accepted = sink.snapshot()
    emails = _check_exactly_once(url, sink)
    window = max(a.at for a in accepted) - min(a.at for a in accepted) if accepted else 0.0
    return Run(workers, emails, seconds, window, per_worker)


def _check_exactly_once(url: str, sink: Sink) -> int:
    """Every queued email was sent once, and the server got exactly those Message-IDs."""
    o = t.outbound_emails
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            statuses = dict(
                db.execute(sa.select(o.c.status, sa.func.count()).group_by(o.c.status)).all()
            )
            stored = set(db.scalars(sa.select(o.c.message_id).where(o.c.status == "sent")))
    finally:
        engine.dispose()
    total = sum(statuses.values())
    accepted = sink.snapshot()
    received = {a.message_id for a in accepted}
    duplicates = sink.duplicates()
    if statuses != {"sent": total}:
        raise LostOrDuplicated(f"not every email was sent: {statuses}")
    if duplicates:
        raise LostOrDuplicated(f"{len(duplicates)} Message-IDs arrived more than once")
    if len(accepted) != total or received != stored:
        raise LostOrDuplicated(
            f"the server accepted {len(accepted)} messages ({len(received)} distinct) for "
            f"{total} sent emails ({len(received ^ stored)} Message-IDs differ)"
        )
    return total


def scale(
    database_url: str,
    *,
    emails: int,
    counts: Sequence[int] = (1, 2, 4),
    batch: int = 200,
    progress: Progress | None = None,
) -> list[Run]:
    """Build one queue of `emails`, drain a copy of it with each number of workers."""
    progress = progress or Progress()
    runs = []
    with tempfile.TemporaryDirectory(prefix="optout-bench-workers-") as name:
        folder = Path(name)
        databases = Databases(database_url, folder)
        try:
            databases.build(emails, progress)
            with running_sink() as (sink, port):
                for count in counts:
                    with databases.copy(f"w{count}") as url:
                        run = run_workers(
                            url, workers=count, sink=sink, port=port, batch=batch, folder=folder
                        )
                    runs.append(run)
                    progress.say(
                        f"{count} worker(s): {run.emails} emails in {run.seconds:.1f} s, "
                        f"{run.per_second:.0f}/s (each sent {run.per_worker}); no duplicate, "
                        "none lost"
                    )
        finally:
            databases.drop()
    return runs


def report(runs: Sequence[Run], *, database: str) -> str:
    base = runs[0].per_second
    lines = [
        f"database {database}",
        "| workers | emails | seconds | emails/s | vs 1 worker | emails/s at the server "
        "(first to last accepted) | sent by each |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines.extend(
        f"| {r.workers} | {r.emails} | {r.seconds:.1f} | {r.per_second:.0f} | "
        f"{r.per_second / base:.2f}x | {r.window_per_second:.0f} | "
        f"{', '.join(str(n) for n in r.per_worker)} |"
        for r in runs
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        required=True,
        help="a PostgreSQL server (a database of its own is created and dropped) or "
        "sqlite:///any/file (only its folder is ignored: copies go to a temporary one)",
    )
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=200, help="emails claimed per transaction")
    args = parser.parse_args()
    runs = scale(args.database_url, emails=args.emails, counts=args.workers, batch=args.batch)
    database = sa.make_url(args.database_url).get_backend_name()
    print(report(runs, database=database))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"workers-{time.strftime('%Y%m%d-%H%M%S')}-{database}.json"
    payload: dict[str, Any] = {"database": database, "runs": [asdict(r) for r in runs]}
    out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
