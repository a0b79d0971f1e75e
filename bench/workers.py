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

With `--mailboxes N` (R37, R38), each number of workers drains the queue `--rounds` times
without mailboxes and as often with them, interleaved (without, with, without, with), so
a change of the machine's load hits both arms. Without: the enrollments send from the
sequence's From address at any hour, as before mailboxes existed. With: they are dealt
round-robin over N mailboxes in six time zones (a daily limit high enough not to stop the
drain, no gap: a pass claims with one clock reading, so a gap would let each mailbox send
once a pass), and the sequence has a schedule every day from 00:00 to 23:59, open now in
every zone, so each pass moves out-of-window emails and each claim locks and counts the
mailboxes. Reports the emails per second of each arm and their ratio.

  python -m bench.workers --database-url sqlite:////tmp/w.sqlite3 --workers 1 --mailboxes 200

The queue's workspace holds one person per email; `--people N` pads it to N people with
no enrollment (a company per 100 of them), so the claim and the send-time check run
against a workspace of that size. The queue is analyzed (planner statistics) before it is
copied, so both arms start with the same statistics.

Each run also reports the CPU time its worker processes took (user and system, from
`getrusage` of the finished children), and so the worker's CPU per sent email. With
`--tree LABEL=DIR` (repeated), each run is made once with each tree's worker
(`PYTHONPATH=DIR/src`, an unpacked commit), interleaved, on copies of the same queue:
one commit's worker against another's on one machine at one time.

  python -m bench.workers --database-url sqlite:////tmp/w.sqlite3 --workers 1 --emails 5000 \
    --rounds 3 --tree before=/tmp/before --tree after=/tmp/after
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import due_queue, mailbox_claim
from bench.capacity import ZONES
from bench.commands import bare_environment, start
from bench.load import Progress
from bench.smtp_sink import Sink, running_sink, transport_url
from bench.trees import Tree, tree_of
from optout import deployment
from optout.clock import utcnow
from optout.config import Settings
from optout.db import statistics
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.mail import windows

RESULTS = Path(__file__).resolve().parent / "results"
WORKER_TIMEOUT_SECONDS = 3600
# The schedule of the arm with mailboxes: a window (not "any time", so every pass moves
# the emails whose window is closed), open now in every zone but in its last minute.
ALL_DAY = windows.Schedule(
    days=windows.EVERY_DAY, start_minute=0, end_minute=windows.MINUTES_A_DAY - 1
)


class LostOrDuplicated(AssertionError):
    """The run did not deliver every email exactly once."""


@dataclass(frozen=True)
class Run:
    workers: int
    emails: int
    seconds: float  # from starting the processes until the last one exited
    window_seconds: float  # from the first to the last message the server accepted
    per_worker: list[int]  # emails each process reported sent
    mailboxes: int = 0  # the enrollments dealt over this many mailboxes (0: none)
    cpu_seconds: float = 0.0  # user and system CPU of the worker processes
    tree: str = ""  # the label of the tree whose worker ran (none: the installed one)

    @property
    def per_second(self) -> float:
        return self.emails / self.seconds

    @property
    def window_per_second(self) -> float:
        return self.emails / self.window_seconds if self.window_seconds > 0 else float("inf")

    @property
    def cpu_ms_per_email(self) -> float:
        return 1000 * self.cpu_seconds / self.emails if self.emails else 0.0


INSTALLED = Tree("")


class Databases:
    """A queue built once, copied afresh for each run."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = sa.make_url(url)
        self.folder = folder
        self.postgresql = self.url.get_backend_name() == "postgresql"
        self.base = f"optout_bench_workers_{uuid.uuid4().hex[:8]}"
        self.queue: due_queue.DueQueue | None = None

    def _url_of(self, name: str) -> str:
        if self.postgresql:
            return self.url.set(database=name).render_as_string(hide_password=False)
        return f"sqlite:///{self.folder / f'{name}.sqlite3'}"

    def _admin(self) -> sa.Engine:
        return create_engine(
            self.url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
        )

    def build(self, emails: int, batch_note: Progress, *, people: int = 0) -> None:
        if self.postgresql:
            admin = self._admin()
            with admin.connect() as db:
                db.exec_driver_sql(f'CREATE DATABASE "{self.base}"')
            admin.dispose()
        engine = create_engine(self._url_of(self.base))
        try:
            upgrade(engine)
            started = time.perf_counter()
            self.queue = queue = due_queue.build(engine, emails=emails, now=utcnow())
            batch_note.say(f"queued {emails} due emails in {time.perf_counter() - started:.1f} s")
            if people > emails:
                started = time.perf_counter()
                added = due_queue.pad_people(
                    engine, workspace_id=queue.workspace_id, people=people, now=utcnow()
                )
                batch_note.say(
                    f"added {added} people with no enrollment (workspace of {people}) in "
                    f"{time.perf_counter() - started:.1f} s"
                )
            if self.postgresql:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                    db.exec_driver_sql("VACUUM ANALYZE")
            else:
                _analyze(engine)
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


def give_mailboxes(url: str, *, queue: due_queue.DueQueue, count: int, daily_limit: int) -> None:
    """Deal the queue's enrollments over `count` new mailboxes and give the sequence the
    all-day schedule, set-based (before the clock starts)."""
    now = utcnow()
    for name in ZONES:
        closes = windows.closes_after(now, ALL_DAY, windows.zone(name))
        if closes - now < timedelta(minutes=2):
            raise RuntimeError(f"the sending window closes within 2 minutes in {name}")
    engine = create_engine(url)
    try:
        ids = mailbox_claim.make_mailboxes(
            engine,
            workspace_id=queue.workspace_id,
            count=count,
            now=now,
            daily_limit=daily_limit,
            min_gap_seconds=0,
            zones=ZONES,
        )
        mailbox_claim.deal(engine, ids=ids)
        s = t.sequences
        with engine.begin() as db:
            db.execute(
                s.update()
                .where(s.c.id == queue.sequence_id)
                .values(
                    send_days=ALL_DAY.days,
                    send_from_minute=ALL_DAY.start_minute,
                    send_until_minute=ALL_DAY.end_minute,
                )
            )
        _analyze(engine)
    finally:
        engine.dispose()


def _analyze(engine: sa.Engine) -> None:
    """Planner statistics, as optout takes them after a bulk load, in a transaction that
    commits: on SQLite the engine begins every writing transaction (an AUTOCOMMIT
    connection's too), so an ANALYZE outside `begin()` is rolled back with it."""
    with engine.begin() as db:
        if db.dialect.name == "sqlite":
            statistics.analyze(db)
        else:
            db.exec_driver_sql("ANALYZE")


def _check_mailboxes(url: str, *, count: int, emails: int, since: datetime) -> None:
    """Every sent email went out from one of the mailboxes, each of them sent, and their
    counters of the day add up to the emails."""
    o, b = t.outbound_emails, t.mailboxes
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            without = db.scalar(
                sa.select(sa.func.count()).select_from(o).where(o.c.mailbox_id.is_(None))
            )
            used = db.scalar(sa.select(sa.func.count(sa.distinct(o.c.mailbox_id))))
            counted = db.scalar(
                sa.select(sa.func.sum(b.c.sends_today)).where(b.c.created_at >= since)
            )
    finally:
        engine.dispose()
    if without or used != count or counted != emails:
        raise LostOrDuplicated(
            f"{without} emails went out without a mailbox, {used} of {count} mailboxes sent, "
            f"their counters say {counted} of {emails}"
        )


def run_workers(
    url: str,
    *,
    workers: int,
    sink: Sink,
    port: int,
    batch: int,
    folder: Path,
    tree: Tree = INSTALLED,
) -> Run:
    """Start `workers` processes of `optout worker --once` (of `tree`), wait for all, check
    the result."""
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
    if tree.src is not None:
        env["PYTHONPATH"] = str(tree.src)
    log = folder / "workers.log"
    # CPU of the children waited for since: these workers, as nothing else is started here.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    failed = [p.returncode for p in processes if p.returncode != 0]
    if failed:
        raise RuntimeError(f"worker exited with {failed}; see {log}:\n{log.read_text()[-2000:]}")
    per_worker = [int(json.loads(out)["sent"]) for out in outputs]
    accepted = sink.snapshot()
    emails = _check_exactly_once(url, sink)
    window = max(a.at for a in accepted) - min(a.at for a in accepted) if accepted else 0.0
    return Run(workers, emails, seconds, window, per_worker, cpu_seconds=cpu, tree=tree.label)


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
    mailboxes: int = 0,
    rounds: int = 2,
    daily_limit: int = 100_000,
    people: int = 0,
    trees: Sequence[Tree] = (INSTALLED,),
    progress: Progress | None = None,
) -> list[Run]:
    """Build one queue of `emails` (in a workspace padded to `people` people with no
    enrollment, when that is more), drain a copy of it with each number of workers (with
    `mailboxes`, `rounds` times without and with them, interleaved; with several `trees`,
    `rounds` times, each run once with each tree's worker)."""
    several = len(trees) > 1
    arms = [0, mailboxes] * rounds if mailboxes else [0] * (rounds if several else 1)
    turns = [(arm, tree) for arm in arms for tree in trees]
    progress = progress or Progress()
    runs = []
    with tempfile.TemporaryDirectory(prefix="optout-bench-workers-") as name:
        folder = Path(name)
        databases = Databases(database_url, folder)
        try:
            databases.build(emails, progress, people=people)
            with running_sink() as (sink, port):
                for count in counts:
                    for turn, (arm, tree) in enumerate(turns):
                        with databases.copy(f"w{count}_{turn}") as url:
                            if arm:
                                assert databases.queue is not None
                                since = utcnow() - timedelta(seconds=1)
                                give_mailboxes(
                                    url, queue=databases.queue, count=arm, daily_limit=daily_limit
                                )
                            run = run_workers(
                                url, workers=count, sink=sink, port=port, batch=batch,
                                folder=folder, tree=tree,
                            )  # fmt: skip
                            if arm:
                                _check_mailboxes(url, count=arm, emails=run.emails, since=since)
                        run = replace(run, mailboxes=arm)
                        runs.append(run)
                        progress.say(
                            f"{count} worker(s){f' of {tree.label}' if tree.label else ''}, "
                            f"{arm or 'no'} mailboxes: {run.emails} emails in {run.seconds:.1f} "
                            f"s, {run.per_second:.0f}/s, worker CPU {run.cpu_seconds:.1f} s "
                            f"({run.cpu_ms_per_email:.2f} ms an email; each sent "
                            f"{run.per_worker}); no duplicate, none lost; load average "
                            f"{os.getloadavg()[0]:.1f}"
                        )
        finally:
            databases.drop()
    return runs


def report(runs: Sequence[Run], *, database: str) -> str:
    if len({r.tree for r in runs}) > 1:
        return report_trees(runs, database=database)
    if any(r.mailboxes for r in runs):
        return report_mailboxes(runs, database=database)
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


def report_trees(runs: Sequence[Run], *, database: str) -> str:
    """Each run in order, then per number of workers and arm: each tree's emails over its
    seconds and its CPU per email, and each tree against the first."""
    lines = [
        f"database {database}",
        "| tree | workers | mailboxes | emails | seconds | emails/s | worker CPU, s | "
        "CPU ms an email |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {r.tree} | {r.workers} | {r.mailboxes or 'none'} | {r.emails} | {r.seconds:.1f} | "
        f"{r.per_second:.0f} | {r.cpu_seconds:.1f} | {r.cpu_ms_per_email:.2f} |"
        for r in runs
    )
    labels = list(dict.fromkeys(r.tree for r in runs))
    for count, arm in sorted({(r.workers, r.mailboxes) for r in runs}):
        totals = {}
        for label in labels:
            mine = [r for r in runs if (r.tree, r.workers, r.mailboxes) == (label, count, arm)]
            emails = sum(r.emails for r in mine)
            totals[label] = (
                emails / sum(r.seconds for r in mine),
                1000 * sum(r.cpu_seconds for r in mine) / emails,
            )
        first, (rate, cpu) = labels[0], totals[labels[0]]
        lines.append(
            f"{count} worker(s), {arm or 'no'} mailboxes: "
            + "; ".join(
                f"{label} {r:.0f} /s, {c:.2f} ms CPU an email"
                + ("" if label == first else f" ({r / rate:.2f}x the rate, {c / cpu:.2f}x the CPU)")
                for label, (r, c) in totals.items()
            )
        )
    return "\n".join(lines)


def report_mailboxes(runs: Sequence[Run], *, database: str) -> str:
    """Each run in order, then per number of workers: each arm's emails over its seconds,
    and the ratio with mailboxes / without."""
    lines = [
        f"database {database}",
        "| workers | mailboxes | emails | seconds | emails/s | emails/s at the server | "
        "worker CPU, s | CPU ms an email |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {r.workers} | {r.mailboxes or 'none'} | {r.emails} | {r.seconds:.1f} | "
        f"{r.per_second:.0f} | {r.window_per_second:.0f} | {r.cpu_seconds:.1f} | "
        f"{r.cpu_ms_per_email:.2f} |"
        for r in runs
    )
    for count in sorted({r.workers for r in runs}):
        mine = [r for r in runs if r.workers == count]
        plain = [r for r in mine if not r.mailboxes]
        limited = [r for r in mine if r.mailboxes]
        a = sum(r.emails for r in plain) / sum(r.seconds for r in plain)
        b = sum(r.emails for r in limited) / sum(r.seconds for r in limited)
        pairs = ", ".join(
            f"{w.per_second / wo.per_second:.2f}x" for wo, w in zip(plain, limited, strict=False)
        )
        lines.append(
            f"{count} worker(s): without mailboxes {a:.0f} /s, with {limited[0].mailboxes} "
            f"mailboxes {b:.0f} /s, ratio {b / a:.2f}x (pair by pair {pairs})"
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
    parser.add_argument(
        "--mailboxes",
        type=int,
        default=0,
        help="also drain the queue dealt over this many mailboxes, interleaved (0: without)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs of each arm, with --mailboxes or --tree"
    )
    parser.add_argument("--daily-limit", type=int, default=100_000)
    parser.add_argument(
        "--people",
        type=int,
        default=0,
        help="pad the workspace to this many people with no enrollment (default: one "
        "person per email, no more)",
    )
    parser.add_argument(
        "--tree",
        type=tree_of,
        action="append",
        help="LABEL=DIR of an unpacked commit whose worker runs (repeat: interleaved)",
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    runs = scale(
        args.database_url,
        emails=args.emails,
        counts=args.workers,
        batch=args.batch,
        mailboxes=args.mailboxes,
        rounds=args.rounds,
        daily_limit=args.daily_limit,
        people=args.people,
        trees=args.tree or (INSTALLED,),
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    database = sa.make_url(args.database_url).get_backend_name()
    print(report(runs, database=database))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"workers-{time.strftime('%Y%m%d-%H%M%S')}-{database}.json"
    payload: dict[str, Any] = {"database": database, "runs": [asdict(r) for r in runs]}
    out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
