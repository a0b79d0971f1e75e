"""Queueing the next email of enrollments, set-based, one group of same-position
enrollments at a time (R26). A finished enrollment gets status `finished`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.sending.plan import StepRow, next_email
from optout.services import events


def steps_of(db: Connection, *, sequence_id: int) -> list[StepRow]:
    s = t.sequence_steps
    rows = db.execute(
        sa.select(s.c.id, s.c.position, s.c.kind, s.c.wait_seconds)
        .where(s.c.sequence_id == sequence_id)
        .order_by(s.c.position)
    )
    return [StepRow(*row) for row in rows]


def queue_next(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    enrollment_ids: sa.Select[Any],
    after: int | None,
    now: datetime,
    actor: str,
) -> None:
    """Queue the email that follows position `after` (None: the first) for each active
    enrollment of `enrollment_ids`, or finish the enrollments that have none left."""
    e, o = t.enrollments, t.outbound_emails
    upcoming = next_email(steps_of(db, sequence_id=sequence_id), after=after)
    active = sa.and_(e.c.id.in_(enrollment_ids), e.c.status.in_(t.ACTIVE_STATUSES))
    if upcoming.step is None:
        events.record_from_select(
            db,
            workspace_id=workspace_id,
            kind="enrollment_finished",
            actor=actor,
            now=now,
            select=sa.select(e.c.id.label("enrollment_id"), e.c.person_id, e.c.sequence_id).where(
                active
            ),
        )
        db.execute(
            e.update()
            .where(active)
            .values(
                status="finished", ended_at=now, end_reason="completed every step", next_run_at=None
            )
        )
        return
    due = now + timedelta(seconds=upcoming.wait_seconds)
    db.execute(
        o.insert().from_select(
            [
                "workspace_id",
                "enrollment_id",
                "step_id",
                "person_id",
                "status",
                "due_at",
                "attempts",
            ],
            sa.select(
                e.c.workspace_id,
                e.c.id,
                sa.literal(upcoming.step.id, sa.Integer),
                e.c.person_id,
                sa.literal("queued"),
                sa.literal(due, sa.DateTime),
                sa.literal(0, sa.Integer),
            ).where(active),
        )
    )
    db.execute(
        e.update().where(active).values(next_position=upcoming.step.position, next_run_at=due)
    )
