"""The job runner on both databases: chunks that commit and move the progress, a job
stopped halfway and resumed, a job whose process died taken over once it is stale, and
one that keeps dying failed with the reason."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.jobs import kinds, runner, store, submit
from optout.services.enrollments import enrolling
from tests.factories import World

Committed = Callable[[], AbstractContextManager[World]]


def _active_world(committed: Committed) -> tuple[int, int, int, list[int]]:
    """A workspace with 20 in-progress and 40 not-started enrollments in sequence A, and
    10 in sequence B; every enrollment has a queued email."""
    with committed() as world:
        staff = [world.person(f"p{i}@acme{i % 7}.com") for i in range(60)]
        seq, other = world.sequence("A"), world.sequence("B")
        world.enroll(seq, staff)
        world.enroll(other, staff[:10])
        e = t.enrollments
        world.db.execute(
            e.update()
            .where(e.c.sequence_id == seq, e.c.person_id.in_(staff[:20]))
            .values(status="in_progress")
        )
        return world.ws, seq, other, staff


def _submit(engine: Engine, ws: int, seq: int, now: datetime, chunk: int = 7) -> store.Job:
    with engine.begin() as db:
        return submit.bulk_unenroll(
            db,
            workspace_id=ws,
            statuses=["in_progress"],
            sequence_id=seq,
            actor="ops@example.com",
            now=now,
            chunk=chunk,
        )


def _job(engine: Engine, ws: int, job_id: int) -> store.Job:
    with engine.connect() as db:
        return store.get(db, workspace_id=ws, job_id=job_id)


def _counts(engine: Engine, ws: int, seq: int) -> dict[str, int]:
    with engine.connect() as db:
        return enrolling.count_by_status(db, workspace_id=ws, sequence_id=seq)


def _ended_events(engine: Engine, ws: int) -> list[int]:
    ev = t.events
    with engine.connect() as db:
        return list(
            db.scalars(
                sa.select(ev.c.enrollment_id).where(
                    ev.c.workspace_id == ws,
                    ev.c.kind == "enrollment_ended",
                    ev.c.rule == "bulk_unenroll",
                )
            )
        )


def test_R10_bulk_unenroll_job_commits_each_chunk_and_its_progress(
    engine: Engine, committed: Committed, now: datetime
) -> None:
    ws, seq, other, _ = _active_world(committed)
    job = _submit(engine, ws, seq, now)
    assert (job.state, job.done, job.total, job.percent) == ("queued", 0, None, 0)

    # Two steps (count, then the first chunk), then the runner stops: the job is back in
    # the queue with exactly what was committed.
    worked = runner.run_next(engine, runner="r1", clock=lambda: now, max_steps=2)
    assert worked == job.id
    halfway = _job(engine, ws, job.id)
    assert (halfway.state, halfway.done, halfway.total) == ("queued", 7, 20)
    assert halfway.percent == 35
    assert _counts(engine, ws, seq) == {"unenrolled": 7, "in_progress": 13, "not_started": 40}

    assert runner.run_pending(engine, runner="r2", clock=lambda: now) == 1
    finished = _job(engine, ws, job.id)
    assert (finished.state, finished.done, finished.total, finished.percent) == (
        "done",
        20,
        20,
        100,
    )
    assert finished.result == {"enrollments_ended": 20, "emails_cancelled": 20}
    assert finished.finished_at == now
    assert finished.error == ""
    assert _counts(engine, ws, seq) == {"unenrolled": 20, "not_started": 40}
    assert _counts(engine, ws, other) == {"not_started": 10}
    ended = _ended_events(engine, ws)
    assert len(ended) == len(set(ended)) == 20
    assert runner.run_pending(engine, runner="r2", clock=lambda: now) == 0


def test_R10_job_of_a_process_that_died_halfway_is_taken_over_and_ends_nobody_twice(
    engine: Engine, committed: Committed, now: datetime
) -> None:
    ws, seq, _, _ = _active_world(committed)
    job = _submit(engine, ws, seq, now, chunk=8)
    # A runner claims it, commits two steps (count, 8 ended) and dies: no release.
    with engine.begin() as db:
        claimed = store.claim_next(db, runner="dead", now=now)
        assert claimed is not None
        assert claimed.id == job.id
    for _ in range(2):
        with engine.begin() as db:
            held = store.held(db, job_id=job.id, runner="dead")
            outcome = kinds.STEPS[held.kind](db, held, now=now, progress=lambda d, n: None)
            store.record_step(db, job=held, runner="dead", outcome=outcome, now=now)
    left = _job(engine, ws, job.id)
    assert (left.state, left.done) == ("running", 8)

    # While its heartbeat is fresh nobody else touches it.
    soon = now + timedelta(minutes=1)
    assert runner.run_next(engine, runner="alive", clock=lambda: soon) is None
    assert _job(engine, ws, job.id).done == 8

    later = now + store.STALE_AFTER + timedelta(seconds=1)
    assert runner.run_next(engine, runner="alive", clock=lambda: later) == job.id
    resumed = _job(engine, ws, job.id)
    assert (resumed.state, resumed.done, resumed.restarts) == ("done", 20, 1)
    assert resumed.result == {"enrollments_ended": 20, "emails_cancelled": 20}
    ended = _ended_events(engine, ws)
    assert len(ended) == len(set(ended)) == 20
    assert _counts(engine, ws, seq) == {"unenrolled": 20, "not_started": 40}

    # The dead runner, should it wake up, holds nothing any more.
    with engine.begin() as db, pytest.raises(store.JobLost):
        store.held(db, job_id=job.id, runner="dead")


def test_R10_job_whose_process_keeps_dying_fails_with_the_reason(
    engine: Engine, committed: Committed, now: datetime
) -> None:
    ws, seq, _, _ = _active_world(committed)
    job = _submit(engine, ws, seq, now)
    moment = now
    for attempt in range(store.MAX_RESTARTS + 1):
        with engine.begin() as db:
            claimed = store.claim_next(db, runner=f"dies-{attempt}", now=moment)
            assert claimed is not None
            assert claimed.restarts == attempt
        moment += store.STALE_AFTER + timedelta(seconds=1)
    with engine.begin() as db:
        assert store.claim_next(db, runner="last", now=moment) is None
    failed = _job(engine, ws, job.id)
    assert failed.state == "failed"
    assert "stopped 4 times" in failed.error
    assert _counts(engine, ws, seq) == {"in_progress": 20, "not_started": 40}


def test_R10_bulk_unenroll_job_refuses_final_statuses_before_queueing(
    engine: Engine, committed: Committed, now: datetime
) -> None:
    ws, seq, _, _ = _active_world(committed)
    with engine.begin() as db, pytest.raises(InvalidInput, match="active statuses"):
        submit.bulk_unenroll(
            db, workspace_id=ws, statuses=["finished"], actor="a", now=now, sequence_id=seq
        )
    with engine.connect() as db:
        assert store.recent(db, workspace_id=ws) == []


def test_R10_send_worker_takes_a_few_steps_per_pass_and_leaves_imports_to_the_web(
    engine: Engine, committed: Committed, now: datetime, tmp_path: Path
) -> None:
    ws, seq, _, _ = _active_world(committed)
    upload = tmp_path / "leads.csv"
    upload.write_text("Email\nann@acme.com\n", encoding="utf-8")
    with engine.begin() as db:
        queued_import = submit.csv_import(
            db,
            workspace_id=ws,
            kind="people",
            path=upload,
            errors_path=tmp_path / "errors.csv",
            mapping={"Email": "email"},
            actor="ops@example.com",
            now=now,
        )
    job = _submit(engine, ws, seq, now, chunk=1)

    assert runner.worker_pass(engine, clock=lambda: now) == 1
    paused = _job(engine, ws, job.id)
    steps = runner.WORKER_STEPS_PER_PASS
    assert (paused.state, paused.done) == ("queued", steps - 1)  # one step counted
    assert _job(engine, ws, queued_import.id).state == "queued"

    runner.worker_pass(engine, clock=lambda: now)
    assert _job(engine, ws, job.id).state == "done"
    assert _job(engine, ws, queued_import.id).state == "queued"
    assert _counts(engine, ws, seq) == {"unenrolled": 20, "not_started": 40}
