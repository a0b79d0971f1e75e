"""Background jobs: the rows that say what long work was asked for, how far it got and
how it ended (bulk unenroll, CSV imports, saves that unenroll many).

A page or the API queues a job; a runner (`optout.jobs.runner`) claims it and works
through it in steps, each step one transaction that also moves `done` and the
heartbeat, so the progress read back is exactly what has been committed. A runner that
stops cleanly puts its job back in the queue; one that dies leaves it `running` with a
heartbeat that stops moving, and after `STALE_AFTER` another runner takes it over
(its steps are idempotent), up to `MAX_RESTARTS` times, after which it fails with the
reason. Nothing is lost silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from optout.db import tables as t
from optout.errors import InvalidInput, NotFound

STALE_AFTER = timedelta(minutes=5)
MAX_RESTARTS = 3
KINDS = t.JOB_KINDS
FINAL_STATES = ("done", "failed")


class JobLost(Exception):
    """The runner no longer holds the job (another runner took it over)."""


@dataclass(frozen=True)
class Job:
    id: int
    workspace_id: int
    kind: str
    state: str
    params: dict[str, Any]
    done: int
    total: int | None
    result: dict[str, Any] | None
    error: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    restarts: int

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def percent(self) -> int:
        """How far it got, 0-100 (100 once done, whatever the count says)."""
        if self.state == "done":
            return 100
        if not self.total:
            return 0
        return max(0, min(99, self.done * 100 // self.total))


@dataclass(frozen=True)
class StepOutcome:
    """What one step did: the progress to record, the summary so far, whether it is over,
    and any parameter the next steps need (for example where the work set ends)."""

    done: int
    total: int | None
    result: Mapping[str, Any]
    finished: bool
    params: Mapping[str, Any] | None = None


def _job(row: RowMapping) -> Job:
    return Job(
        id=row["id"],
        workspace_id=row["workspace_id"],
        kind=row["kind"],
        state=row["state"],
        params=dict(row["params"] or {}),
        done=row["done"],
        total=row["total"],
        result=dict(row["result"]) if row["result"] is not None else None,
        error=row["error"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        finished_at=row["finished_at"],
        restarts=row["attempts"],
    )


def submit(
    db: Connection,
    *,
    workspace_id: int,
    kind: str,
    params: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> Job:
    """Queue a job; a runner picks it up."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown kind of job {kind!r}")
    j = t.jobs
    job_id = db.execute(
        j.insert()
        .values(
            workspace_id=workspace_id,
            kind=kind,
            state="queued",
            params=dict(params),
            done=0,
            error="",
            created_by=actor,
            created_at=now,
            attempts=0,
        )
        .returning(j.c.id)
    ).scalar_one()
    return get(db, workspace_id=workspace_id, job_id=job_id)


def get(db: Connection, *, workspace_id: int, job_id: int) -> Job:
    j = t.jobs
    row = (
        db.execute(sa.select(j).where(j.c.id == job_id, j.c.workspace_id == workspace_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no job {job_id} in this workspace")
    return _job(row)


def recent(
    db: Connection, *, workspace_id: int, kinds: Sequence[str] = (), limit: int = 10
) -> list[Job]:
    """The newest jobs of the workspace, newest first."""
    j = t.jobs
    query = sa.select(j).where(j.c.workspace_id == workspace_id).order_by(j.c.id.desc())
    if kinds:
        query = query.where(j.c.kind.in_(list(kinds)))
    return [_job(row) for row in db.execute(query.limit(limit)).mappings()]


def _claimable(
    now: datetime, kinds: Sequence[str], stale_after: timedelta
) -> sa.ColumnElement[bool]:
    j = t.jobs
    stale = sa.and_(j.c.state == "running", j.c.heartbeat_at < now - stale_after)
    return sa.and_(sa.or_(j.c.state == "queued", stale), j.c.kind.in_(list(kinds)))


def any_claimable(
    db: Connection,
    *,
    now: datetime,
    kinds: Sequence[str] = KINDS,
    stale_after: timedelta = STALE_AFTER,
) -> bool:
    """Whether `claim_next` would find work: a read, so an idle runner takes no write lock."""
    j = t.jobs
    found = db.execute(
        sa.select(j.c.id).where(_claimable(now, kinds, stale_after)).limit(1)
    ).first()
    return found is not None


def claim_next(
    db: Connection,
    *,
    runner: str,
    now: datetime,
    kinds: Sequence[str] = KINDS,
    stale_after: timedelta = STALE_AFTER,
) -> Job | None:
    """Take the oldest queued job of `kinds`, or a running one whose runner stopped
    beating. A job taken over too often fails instead, with the reason."""
    j = t.jobs
    stale = sa.and_(j.c.state == "running", j.c.heartbeat_at < now - stale_after)
    db.execute(
        j.update()
        .where(stale, j.c.attempts >= MAX_RESTARTS, j.c.kind.in_(list(kinds)))
        .values(
            state="failed",
            runner=None,
            finished_at=now,
            error=(
                f"the process running it stopped {MAX_RESTARTS + 1} times before it finished; "
                "what it had done up to then stays done, the rest was not done"
            ),
        )
    )
    candidates = db.execute(
        sa.select(j.c.id, j.c.state)
        .where(_claimable(now, kinds, stale_after))
        .order_by(j.c.id)
        .limit(5)
    ).all()
    for job_id, state in candidates:
        claimed = db.execute(
            j.update()
            .where(j.c.id == job_id, j.c.state == state, sa.or_(j.c.state == "queued", stale))
            .values(
                state="running",
                runner=runner,
                heartbeat_at=now,
                started_at=sa.func.coalesce(j.c.started_at, now),
                attempts=j.c.attempts + (1 if state == "running" else 0),
            )
        )
        if claimed.rowcount == 1:
            row = db.execute(sa.select(j).where(j.c.id == job_id)).mappings().one()
            return _job(row)
    return None


def held(db: Connection, *, job_id: int, runner: str) -> Job:
    """The job as `runner` holds it, locked for this step; JobLost if it does not."""
    j = t.jobs
    query = sa.select(j).where(j.c.id == job_id, j.c.runner == runner, j.c.state == "running")
    if db.dialect.name == "postgresql":
        query = query.with_for_update()
    row = db.execute(query).mappings().first()
    if row is None:
        raise JobLost(f"job {job_id} is no longer held by this runner")
    return _job(row)


def record_step(
    db: Connection, *, job: Job, runner: str, outcome: StepOutcome, now: datetime
) -> None:
    """Write a step's progress in the step's own transaction (so it commits with it)."""
    j = t.jobs
    values: dict[str, Any] = {
        "done": outcome.done,
        "total": outcome.total,
        "result": dict(outcome.result),
        "heartbeat_at": now,
    }
    if outcome.params is not None:
        values["params"] = {**job.params, **outcome.params}
    if outcome.finished:
        values.update(state="done", finished_at=now, runner=None)
    changed = db.execute(
        j.update().where(j.c.id == job.id, j.c.runner == runner).values(**values)
    ).rowcount
    if changed != 1:
        raise JobLost(f"job {job.id} is no longer held by this runner")


def release(db: Connection, *, job_id: int, runner: str) -> None:
    """Put a job back in the queue, as far as it got (a runner stopping cleanly)."""
    j = t.jobs
    db.execute(
        j.update()
        .where(j.c.id == job_id, j.c.runner == runner, j.c.state == "running")
        .values(state="queued", runner=None)
    )


def fail(db: Connection, *, job_id: int, runner: str, error: str, now: datetime) -> None:
    j = t.jobs
    db.execute(
        j.update()
        .where(j.c.id == job_id, j.c.runner == runner)
        .values(state="failed", error=error[:2000], finished_at=now, runner=None)
    )
