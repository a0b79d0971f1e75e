"""Keeping queued emails inside their sending windows (R38), set-based.

An email is queued with its due time at an opening of its window (services/send_queue/schedule.py).
Two things can leave a due time outside it: the sequence's schedule is edited, or the
time is set by something that knows no windows (a retry's back-off, an email released
from doubt, a recipient whose time zone changed). `after_edit` moves every queued email
of a sequence that now falls in a closed stretch to the opening that ends it; `due_now`,
run by the worker before each claim with the same `now`, moves every due email whose
window is closed at `now` to its next opening. Both write one statement per time zone;
moved emails keep their order among themselves (the claim takes them by due time, then
id), and nothing is counted as a failure.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.db.hints import broadly
from optout.mail import windows
from optout.services.send_queue.schedule import recipient_zone, recipients, schedule_of

o, e, s = t.outbound_emails, t.enrollments, t.sequences


def _queued_of(sequence_id: int, zone_name: str) -> sa.Select[tuple[int]]:
    return (
        sa.select(o.c.id)
        .select_from(recipients(o.join(e, e.c.id == o.c.enrollment_id)))
        .where(
            e.c.sequence_id == sequence_id, o.c.status == "queued", recipient_zone() == zone_name
        )
    )


def after_edit(db: Connection, *, sequence_id: int) -> int:
    """Move the sequence's queued emails that its (new) schedule closes to the opening
    that follows; returns how many moved."""
    schedule = schedule_of(db, sequence_id=sequence_id)
    if schedule.any_time:
        return 0
    groups = db.execute(
        sa.select(recipient_zone(), sa.func.min(o.c.due_at), sa.func.max(o.c.due_at))
        .select_from(recipients(o.join(e, e.c.id == o.c.enrollment_id)))
        .where(e.c.sequence_id == sequence_id, o.c.status == "queued")
        .group_by(recipient_zone())
    ).all()
    moved = 0
    for zone_name, low, high in groups:
        spans = windows.closed_spans(low, high, schedule, windows.zone(zone_name))
        if not spans:
            continue
        inside = sa.or_(*(sa.and_(o.c.due_at >= a, o.c.due_at < b) for a, b in spans))
        moved += db.execute(
            o.update()
            .where(o.c.id.in_(_queued_of(sequence_id, zone_name)), inside)
            .values(
                due_at=sa.case(
                    *((sa.and_(o.c.due_at >= a, o.c.due_at < b), b) for a, b in spans),
                    else_=o.c.due_at,
                )
            )
        ).rowcount
    _sync_enrollments(db, sequence_id=sequence_id)
    return moved


def due_now(db: Connection, *, now: datetime) -> int:
    """Move every queued email due at `now` whose window is closed at `now` to its next
    opening; returns how many moved."""
    scheduled = sa.or_(
        s.c.send_days != windows.EVERY_DAY,
        s.c.send_from_minute != 0,
        s.c.send_until_minute != windows.MINUTES_A_DAY,
    )
    groups = db.execute(
        sa.select(e.c.sequence_id, recipient_zone())
        .select_from(
            recipients(o.join(e, e.c.id == o.c.enrollment_id).join(s, s.c.id == e.c.sequence_id))
        )
        .where(o.c.status == "queued", o.c.due_at <= now, scheduled)
        .distinct()
    ).all()
    moved = 0
    schedules: dict[int, windows.Schedule] = {}
    for sequence_id, zone_name in groups:
        if sequence_id not in schedules:
            schedules[sequence_id] = schedule_of(db, sequence_id=sequence_id)
        opens = windows.next_opening(now, schedules[sequence_id], windows.zone(zone_name))
        if opens == now:
            continue
        moved += db.execute(
            o.update()
            .where(o.c.id.in_(_queued_of(sequence_id, zone_name)), o.c.due_at <= now)
            .values(due_at=opens)
        ).rowcount
    for sequence_id in schedules:
        _sync_enrollments(db, sequence_id=sequence_id)
    return moved


def _sync_enrollments(db: Connection, *, sequence_id: int) -> None:
    """Each active enrollment's next time is its queued email's due time.

    Each enrollment's emails are found by the enrollment: planned without statistics,
    SQLite would start from the index of every queued email and read the whole queue for
    each enrollment (minutes at 100,000 queued)."""
    mine = sa.and_(o.c.enrollment_id == e.c.id, broadly(o.c.status == "queued"))
    queued = sa.select(sa.func.min(o.c.due_at)).where(mine).scalar_subquery()
    db.execute(
        e.update()
        .where(
            e.c.sequence_id == sequence_id,
            e.c.status.in_(t.ACTIVE_STATUSES),
            sa.exists().where(mine),
        )
        .values(next_run_at=queued)
    )
