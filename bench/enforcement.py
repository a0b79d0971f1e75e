"""Benchmark of enforcement and sending (the Sequences issue): on the generated workspace
with 200,000 active enrollments and 50,000 queued emails,

  (a) saving a company exclusion with unenroll-on-save that matches ~10% of the active
      enrollments: time until every match is unenrolled and its queued emails cancelled;
  (b) bulk unenroll of ~100,000 enrollments by status;
  (c) worker throughput into the outbox transport, emails per second;

each against the same work done as a per-row loop, in the same run (timed on a sample and
scaled linearly; said so in the output). `python -m bench.enforcement --help`.

The work runs on a copy of the generated workspace, so the cached one stays as generated:
SQLite's backup API for the cached file, or `CREATE DATABASE ... TEMPLATE` for a PostgreSQL
database given with `--database-url` (its decision index built by `bench.run` first).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bench.generate import NOW, WORKSPACE_ID, Params
from bench.load import CACHE, Progress, prepare
from optout.config import Settings
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.sending.transports import OutboxTransport
from optout.sending.worker import Mailer, run_once
from optout.services import events
from optout.services.enrollments import enrolling
from optout.services.exclusions import saves
from optout.services.sequences import definitions

ACTIVE = 200_000
QUEUED = 50_000
KEYS = ("bench-secret-key-0123456789abcdef",)
SAMPLE = 1_000


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def _setup(engine: Engine, progress: Progress) -> int:
    """A sequence with 200,000 active enrollments (half not started), 50,000 queued emails."""
    e, o, p, st = t.enrollments, t.outbound_emails, t.people, t.sequence_steps
    with engine.begin() as db:
        sequence_id = definitions.create(
            db,
            workspace_id=WORKSPACE_ID,
            name="Enforcement bench",
            ruleset="Outbound default",
            from_address="Sam <sam@bench.example>",
            steps=[
                definitions.Step("email", subject="Hi {{ person.first_name }}", body_text="One"),
                definitions.Step("wait", wait_seconds=86400),
                definitions.Step("email", subject="Again", body_text="Two"),
            ],
            now=NOW,
        )
        step_id = db.scalar(
            sa.select(st.c.id).where(st.c.sequence_id == sequence_id, st.c.position == 0)
        )
        # Every fifth person, whatever the rules say: the send-time check of (c) then has
        # real work, cancelling those an enforced exclusion or an opt-out now stops.
        chosen = (
            sa.select(p.c.id)
            .where(p.c.workspace_id == WORKSPACE_ID, p.c.id % 5 == 1)
            .order_by(p.c.id)
            .limit(ACTIVE)
            .subquery()
        )
        db.execute(
            e.insert().from_select(
                ["workspace_id", "sequence_id", "person_id", "status", "source", "next_position",
                 "next_run_at", "enrolled_at", "enrolled_by"],
                sa.select(
                    sa.literal(WORKSPACE_ID), sa.literal(sequence_id), chosen.c.id,
                    sa.case((chosen.c.id % 2 == 0, "in_progress"), else_="not_started"),
                    sa.literal("manual"), sa.literal(0), sa.literal(NOW, sa.DateTime),
                    sa.literal(NOW, sa.DateTime), sa.literal("bench"),
                ),
            )
        )  # fmt: skip
        mine = (
            sa.select(e.c.id, e.c.person_id)
            .where(e.c.sequence_id == sequence_id)
            .order_by(e.c.id)
            .limit(QUEUED)
            .subquery()
        )
        db.execute(
            o.insert().from_select(
                ["workspace_id", "enrollment_id", "step_id", "person_id", "status", "due_at",
                 "attempts"],
                sa.select(
                    sa.literal(WORKSPACE_ID), mine.c.id, sa.literal(step_id), mine.c.person_id,
                    sa.literal("queued"), sa.literal(NOW + timedelta(days=30), sa.DateTime),
                    sa.literal(0),
                ),
            )
        )  # fmt: skip
        counts = enrolling.count_by_status(db, workspace_id=WORKSPACE_ID, sequence_id=sequence_id)
    progress.say(f"enforcement sequence {sequence_id}: {counts}, {QUEUED} queued emails")
    return sequence_id


def _per_row_end(db: Connection, enrollment_id: int, *, status: str, reason: str) -> None:
    """The baseline: what a per-row loop does for one enrollment (event, cancel, update)."""
    e, o = t.enrollments, t.outbound_emails
    row = db.execute(sa.select(e.c.person_id, e.c.sequence_id).where(e.c.id == enrollment_id)).one()
    for email_id in db.scalars(
        sa.select(o.c.id).where(o.c.enrollment_id == enrollment_id, o.c.status == "queued")
    ):
        events.record(db, workspace_id=WORKSPACE_ID, kind="email_cancelled", actor="bench",
                      now=NOW, email_id=email_id, enrollment_id=enrollment_id)  # fmt: skip
        db.execute(o.update().where(o.c.id == email_id).values(status="cancelled",
                                                               cancel_reason=reason))  # fmt: skip
    events.record(db, workspace_id=WORKSPACE_ID, kind="enrollment_ended", actor="bench", now=NOW,
                  enrollment_id=enrollment_id, person_id=row.person_id,
                  sequence_id=row.sequence_id)  # fmt: skip
    db.execute(e.update().where(e.c.id == enrollment_id).values(status=status, ended_at=NOW,
                                                                end_reason=reason))  # fmt: skip


def _per_row(engine: Engine, ids: list[int], total: int, status: str) -> float:
    """Seconds the per-row loop would take for `total` rows, timed on `ids` (rolled back)."""
    with engine.connect() as db, db.begin() as transaction:
        seconds, _ = _timed(
            lambda: [_per_row_end(db, i, status=status, reason="per-row baseline") for i in ids]
        )
        transaction.rollback()
    return seconds * total / max(len(ids), 1)


def measure_save(engine: Engine, sequence_id: int, progress: Progress) -> dict[str, Any]:
    e, p, c = t.enrollments, t.people, t.companies
    with engine.connect() as db:
        domains = list(
            db.scalars(
                sa.select(c.c.domain).where(
                    c.c.workspace_id == WORKSPACE_ID, c.c.id % 10 == 7, c.c.domain.is_not(None)
                )
            )
        )
        targets = list(
            db.scalars(
                sa.select(e.c.id)
                .join(p, p.c.id == e.c.person_id)
                .join(c, c.c.id == p.c.company_id)
                .where(e.c.sequence_id == sequence_id, e.c.status.in_(t.ACTIVE_STATUSES),
                       c.c.group_id.in_(sa.select(c.c.group_id).where(c.c.id % 10 == 7)))
            )
        )  # fmt: skip
    baseline = _per_row(engine, targets[:SAMPLE], len(targets), "unenrolled")

    def save() -> Any:
        with engine.begin() as db:
            return saves.create(
                db, workspace_id=WORKSPACE_ID, name="Bench: 10% of companies", level="company",
                filter={"field": "company.domain", "op": "in", "value": domains}, actor="bench",
                now=NOW, exclude_from_sequences=True, unenroll_existing_on_save=True, confirm=True,
            )  # fmt: skip

    seconds, saved = _timed(save)
    progress.say(f"(a) save: {seconds:.2f} s, ended {saved.removal.enrollments_ended}")
    return {
        "seconds": seconds,
        "enrollments_ended": saved.removal.enrollments_ended,
        "emails_cancelled": saved.removal.emails_cancelled,
        "domains": len(domains),
        "per_row_seconds": baseline,
        "matches": len(targets),
    }


def measure_bulk(engine: Engine, sequence_id: int, progress: Progress) -> dict[str, Any]:
    e = t.enrollments
    with engine.connect() as db:
        targets = list(
            db.scalars(
                sa.select(e.c.id).where(e.c.sequence_id == sequence_id, e.c.status == "not_started")
            )
        )
    baseline = _per_row(engine, targets[:SAMPLE], len(targets), "unenrolled")

    def bulk() -> Any:
        with engine.begin() as db:
            return enrolling.bulk_unenroll(
                db, workspace_id=WORKSPACE_ID, sequence_id=sequence_id, statuses=["not_started"],
                actor="bench", now=NOW, progress=lambda done, total: None,
            )  # fmt: skip

    seconds, removal = _timed(bulk)
    progress.say(f"(b) bulk unenroll: {seconds:.2f} s, ended {removal.enrollments_ended}")
    return {"seconds": seconds, "enrollments_ended": removal.enrollments_ended,
            "emails_cancelled": removal.emails_cancelled, "per_row_seconds": baseline}  # fmt: skip


def _make_due(engine: Engine, sequence_id: int, count: int) -> None:
    e, o = t.enrollments, t.outbound_emails
    with engine.begin() as db:
        ids = (
            sa.select(o.c.id)
            .join(e, e.c.id == o.c.enrollment_id)
            .where(e.c.sequence_id == sequence_id, o.c.status == "queued",
                   e.c.status.in_(t.ACTIVE_STATUSES), o.c.due_at > NOW)
            .order_by(o.c.id)
            .limit(count)
        )  # fmt: skip
        db.execute(o.update().where(o.c.id.in_(ids)).values(due_at=NOW))


def _send(url: str, folder: str, batch: int) -> int:
    """Emails handled (sent, or cancelled by the send-time check) by one worker pass."""
    engine = create_engine(url)
    mailer = Mailer(Settings(database_url=url, secret_keys=KEYS), OutboxTransport(Path(folder)))
    try:
        result = run_once(engine, mailer=mailer, now=NOW, batch=batch)
        return result.sent + result.cancelled
    finally:
        engine.dispose()


def measure_worker(
    engine: Engine, url: str, sequence_id: int, progress: Progress
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        _make_due(engine, sequence_id, 100)
        seconds, sent = _timed(lambda: _send(url, folder, 1))
        out["per_row_per_second"] = sent / seconds
        runs = []
        # Three one-process runs and a two-process one of twice the size, within the
        # queued emails the setup made (a small workspace has fewer).
        each = min(5_000, QUEUED // 6)
        for _ in range(3):
            _make_due(engine, sequence_id, each)
            seconds, sent = _timed(lambda: _send(url, folder, 200))
            runs.append(sent / seconds)
        out["one_worker_per_second"] = statistics.median(runs)
        out["one_worker_runs"] = runs
        _make_due(engine, sequence_id, 2 * each)
        context = multiprocessing.get_context("spawn")
        with context.Pool(2) as pool:
            seconds, counts = _timed(lambda: pool.starmap(_send, [(url, folder, 200)] * 2))
        out["two_workers_per_second"] = sum(counts) / seconds
        out["two_workers_sent"] = sum(counts)
    progress.say(
        f"(c) worker: {out['one_worker_per_second']:.0f}/s one process, "
        f"{out['two_workers_per_second']:.0f}/s two, per-row {out['per_row_per_second']:.0f}/s"
    )
    return out


@contextmanager
def _copy(source_url: str, key: str) -> Iterator[str]:
    """The URL of a throwaway copy of the database at `source_url`, dropped afterwards."""
    source = sa.make_url(source_url)
    if source.get_backend_name() == "sqlite":
        assert source.database is not None
        copy = CACHE / f"enforcement-{key}.sqlite3"
        copy.unlink(missing_ok=True)
        # SQLite's backup API: a consistent copy even of a WAL database someone is reading.
        with sqlite3.connect(source.database) as original, sqlite3.connect(copy) as target:
            original.backup(target)
        try:
            yield f"sqlite:///{copy}"
        finally:
            copy.unlink(missing_ok=True)
        return
    name = f"{source.database}_enforcement"
    admin = create_engine(source.set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            db.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"')
        try:
            yield source.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                db.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--exclusions", type=int, default=1000)
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database holding the generated workspace (default: the cached "
        "SQLite file); it must not be the server's `postgres` database",
    )
    args = parser.parse_args()
    global ACTIVE, QUEUED
    params = Params(people=args.people, companies=args.companies, exclusions=args.exclusions)
    ACTIVE, QUEUED = min(ACTIVE, args.people // 5), min(QUEUED, args.people // 20)
    progress = Progress()
    source = prepare(params, url=args.database_url, reuse=True, progress=progress)
    with _copy(source, params.key()) as url:
        progress.say(f"working on a copy: {sa.make_url(url).database}")
        engine = create_engine(url)
        try:
            sequence_id = _setup(engine, progress)
            results = {
                "save": measure_save(engine, sequence_id, progress),
                "bulk": measure_bulk(engine, sequence_id, progress),
                "worker": measure_worker(engine, url, sequence_id, progress),
            }
        finally:
            engine.dispose()
    save, bulk, worker = results["save"], results["bulk"], results["worker"]
    print(
        f"{sa.make_url(source).get_backend_name()}: people {args.people}, "
        f"active enrollments {ACTIVE}, queued emails {QUEUED}"
    )
    print(
        f"(a) save with unenroll-on-save: {save['seconds']:.2f} s for "
        f"{save['enrollments_ended']} enrollments, {save['emails_cancelled']} emails "
        f"({save['domains']} domains); per-row loop ~{save['per_row_seconds']:.1f} s "
        f"(timed on {SAMPLE}, scaled): {save['per_row_seconds'] / save['seconds']:.0f}x"
    )
    print(
        f"(b) bulk unenroll: {bulk['seconds']:.2f} s for {bulk['enrollments_ended']} "
        f"enrollments, {bulk['emails_cancelled']} emails; per-row loop "
        f"~{bulk['per_row_seconds']:.1f} s: {bulk['per_row_seconds'] / bulk['seconds']:.0f}x"
    )
    print(f"(c) worker into the outbox: {worker['one_worker_per_second']:.0f} emails/s "
          f"(runs {', '.join(f'{r:.0f}' for r in worker['one_worker_runs'])}), two processes "
          f"{worker['two_workers_per_second']:.0f}/s; claiming one at a time "
          f"{worker['per_row_per_second']:.0f}/s")  # fmt: skip


if __name__ == "__main__":
    main()
