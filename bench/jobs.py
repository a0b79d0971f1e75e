"""Benchmark of bulk unenroll as a background job: the same N active enrollments (each
with a queued email) unenrolled (1) in one transaction, as `POST /enrollments/bulk-unenroll`
does, the baseline, and (2) as a job whose runner commits set-based chunks and records
the progress with each, on copies of one database built in the same run.

`python -m bench.jobs [--enrollments N] [--chunk N] [--database-url URL]`; without a URL
a SQLite file in a temporary folder. Reports seconds and the ratio job / baseline.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.jobs import kinds, runner, store, submit
from optout.services import workspaces
from optout.services.enrollments import enrolling
from optout.services.sequences import definitions, rulesets

NOW = datetime(2026, 12, 1, 9, 0)
BATCH = 20_000


def build(engine: Engine, count: int) -> tuple[int, int]:
    """A workspace with `count` people, each enrolled in one sequence with a queued email."""
    upgrade(engine)
    with engine.begin() as db:
        ws = workspaces.create(db, slug="bench-jobs", name="Bench jobs", now=NOW).id
        rulesets.create(db, workspace_id=ws, name="Default", now=NOW)
        seq = definitions.create(
            db,
            workspace_id=ws,
            name="Outbound",
            ruleset="Default",
            steps=(definitions.Step(kind="email", subject="Hi", body_text="Hello"),),
            from_address="sam@acme-sales.com",
            now=NOW,
        )
        step = db.scalar(
            sa.select(t.sequence_steps.c.id).where(t.sequence_steps.c.sequence_id == seq)
        )
    for start in range(0, count, BATCH):
        rows = [
            {"workspace_id": ws, "email": f"p{i}@c{i % 997}.example",
             "email_domain": f"c{i % 997}.example", "created_at": NOW, "updated_at": NOW}
            for i in range(start, min(start + BATCH, count))
        ]  # fmt: skip
        with engine.begin() as db:
            db.execute(t.people.insert(), rows)
    p, e, o = t.people, t.enrollments, t.outbound_emails
    with engine.begin() as db:
        db.execute(
            e.insert().from_select(
                ["workspace_id", "sequence_id", "person_id", "status", "source", "next_position",
                 "next_run_at", "enrolled_at", "enrolled_by"],
                sa.select(p.c.workspace_id, sa.literal(seq), p.c.id, sa.literal("in_progress"),
                          sa.literal("manual"), sa.literal(0), sa.literal(NOW, sa.DateTime),
                          sa.literal(NOW, sa.DateTime), sa.literal("bench"))
                .where(p.c.workspace_id == ws),
            )
        )  # fmt: skip
        db.execute(
            o.insert().from_select(
                ["workspace_id", "enrollment_id", "step_id", "person_id", "status", "due_at",
                 "attempts"],
                sa.select(e.c.workspace_id, e.c.id, sa.literal(step), e.c.person_id,
                          sa.literal("queued"), sa.literal(NOW, sa.DateTime), sa.literal(0))
                .where(e.c.workspace_id == ws),
            )
        )  # fmt: skip
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.exec_driver_sql("ANALYZE")  # freshly loaded tables have no statistics
    return ws, seq


def one_transaction(engine: Engine, ws: int, seq: int) -> tuple[float, int]:
    started = time.perf_counter()
    with engine.begin() as db:
        removal = enrolling.bulk_unenroll(
            db, workspace_id=ws, sequence_id=seq, statuses=["in_progress"], actor="bench", now=NOW
        )
    return time.perf_counter() - started, removal.enrollments_ended


def as_job(engine: Engine, ws: int, seq: int, chunk: int) -> tuple[float, int, int]:
    started = time.perf_counter()
    with engine.begin() as db:
        job = submit.bulk_unenroll(
            db, workspace_id=ws, sequence_id=seq, statuses=["in_progress"], actor="bench",
            now=NOW, chunk=chunk,
        )  # fmt: skip
    runner.run_pending(engine, runner="bench", clock=lambda: NOW)
    seconds = time.perf_counter() - started
    with engine.connect() as db:
        done = store.get(db, workspace_id=ws, job_id=job.id)
    assert done.state == "done", done
    steps = -(-done.done // chunk) + 2  # count, chunks, the empty last one
    return seconds, done.done, steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=kinds.BULK_CHUNK)
    parser.add_argument("--database-url", help="PostgreSQL: built once per measurement")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="optout-bench-jobs-"))
    try:
        results: dict[str, tuple[float, int]] = {}
        if args.database_url:
            for label in ("baseline", "job"):
                engine = create_engine(args.database_url)
                upgrade(engine)
                with engine.begin() as db:
                    db.execute(t.workspaces.delete().where(t.workspaces.c.slug == "bench-jobs"))
                ws, seq = build(engine, args.enrollments)
                if label == "baseline":
                    results[label] = one_transaction(engine, ws, seq)
                else:
                    seconds, ended, _ = as_job(engine, ws, seq, args.chunk)
                    results[label] = (seconds, ended)
                engine.dispose()
        else:
            source = folder / "source.sqlite"
            engine = create_engine(f"sqlite:///{source}")
            ws, seq = build(engine, args.enrollments)
            engine.dispose()
            for label in ("baseline", "job"):
                copy = folder / f"{label}.sqlite"
                shutil.copy(source, copy)
                engine = create_engine(f"sqlite:///{copy}")
                if label == "baseline":
                    results[label] = one_transaction(engine, ws, seq)
                else:
                    seconds, ended, _ = as_job(engine, ws, seq, args.chunk)
                    results[label] = (seconds, ended)
                engine.dispose()
        base, job = results["baseline"], results["job"]
        assert base[1] == job[1] == args.enrollments, results
        print(f"enrollments: {args.enrollments:,}, chunk {args.chunk:,}")
        print(f"one transaction (baseline): {base[0]:.2f} s")
        print(f"as a job in chunks:        {job[0]:.2f} s  ratio {job[0] / base[0]:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
