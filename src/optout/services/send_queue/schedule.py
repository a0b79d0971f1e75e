"""Queueing the next email of enrollments, set-based, one group of same-position
enrollments at a time (R26). A finished enrollment gets status `finished`.

Each email is due when its wait has passed, moved to the next opening of the sequence's
sending window in the recipient's time zone (R38): one due time per zone among the group,
computed once and written by one statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.mail import windows
from optout.mail.plan import StepRow, next_email
from optout.services import enrollment_queue, events

UTC_NAME = "UTC"


def schedule_of(db: Connection, *, sequence_id: int) -> windows.Schedule:
    s = t.sequences
    row = db.execute(
        sa.select(
            s.c.send_days, s.c.send_from_minute, s.c.send_until_minute, s.c.business_day_waits
        ).where(s.c.id == sequence_id)
    ).one()
    return windows.Schedule(row[0], row[1], row[2], bool(row[3]))


def recipient_zone() -> sa.ColumnElement[str]:
    """The zone an email's window is read in: the person's, else their enrollment's
    mailbox's, else UTC (SQL over `recipients`)."""
    utc = sa.literal_column(f"'{UTC_NAME}'", sa.String)
    return sa.func.coalesce(t.people.c.time_zone, t.mailboxes.c.time_zone, utc)


def recipients(enrollments: sa.FromClause) -> sa.FromClause:
    """`enrollments` (or a join holding it) with the people and mailboxes whose zones
    `recipient_zone` reads."""
    e, p, m = t.enrollments, t.people, t.mailboxes
    return enrollments.join(p, p.c.id == e.c.person_id).outerjoin(m, m.c.id == e.c.mailbox_id)


def due_by_zone(zones: dict[str, datetime], default: datetime) -> sa.ColumnElement[datetime]:
    """A due time per zone name, as one SQL expression over `recipients`."""
    if not zones:
        return sa.literal(default, sa.DateTime)
    return sa.case(
        {name: sa.literal(due, sa.DateTime) for name, due in zones.items()},
        value=recipient_zone(),
        else_=sa.literal(default, sa.DateTime),
    )


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
        enrollment_queue.requeue_capped(
            db, workspace_id=workspace_id, enrollment_ids=enrollment_ids, now=now
        )
        return
    schedule = schedule_of(db, sequence_id=sequence_id)
    default = windows.due_time(now, upcoming.wait_seconds, schedule, windows.zone(UTC_NAME))
    dues: dict[str, datetime] = {}
    if not schedule.any_time:
        names = db.scalars(
            sa.select(recipient_zone()).select_from(recipients(e)).where(active).distinct()
        )
        dues = {
            name: windows.due_time(now, upcoming.wait_seconds, schedule, windows.zone(name))
            for name in names
        }
    due = due_by_zone(dues, default)
    p, m = t.people, t.mailboxes
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
                due,
                sa.literal(0, sa.Integer),
            )
            .select_from(recipients(e))
            .where(active),
        )
    )
    db.execute(
        e.update()
        .where(active)
        .values(
            next_position=upcoming.step.position,
            next_run_at=sa.select(due)
            .select_from(p)
            .outerjoin(m, m.c.id == e.c.mailbox_id)
            .where(p.c.id == e.c.person_id)
            .scalar_subquery()
            if dues
            else default,
        )
    )
