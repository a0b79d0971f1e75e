"""When a person's next email of a sequence may go out, in words, for explain (R38)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.mail import windows
from optout.services.send_queue.schedule import UTC_NAME, schedule_of


def zone_for(db: Connection, *, person_id: int, sequence_id: int) -> str:
    """The person's zone, else the mailbox's of their enrollment in the sequence, else UTC."""
    p, e, m = t.people, t.enrollments, t.mailboxes
    own = db.scalar(sa.select(p.c.time_zone).where(p.c.id == person_id))
    if own:
        return str(own)
    mailbox = db.scalar(
        sa.select(m.c.time_zone)
        .join(e, e.c.mailbox_id == m.c.id)
        .where(e.c.person_id == person_id, e.c.sequence_id == sequence_id)
        .order_by(e.c.id.desc())
        .limit(1)
    )
    return str(mailbox) if mailbox else UTC_NAME


def window_text(db: Connection, *, person_id: int, sequence_id: int, now: datetime) -> str:
    """`inside its sending hours now (Mon-Fri 09:00-17:00 Europe/Berlin)` or `in the next
    window, Tue 09:00 Europe/Berlin`; `at any hour` for a sequence without a schedule."""
    schedule = schedule_of(db, sequence_id=sequence_id)
    if schedule.any_time:
        return "at any hour (the sequence has no sending hours)"
    name = zone_for(db, person_id=person_id, sequence_id=sequence_id)
    where = windows.zone(name)
    opens = windows.next_opening(now, schedule, where)
    if opens == windows.next_opening(now, windows.ANY_TIME, where):
        return f"now, inside its sending hours ({schedule.describe()} {name})"
    local = opens.replace(tzinfo=windows.zone(UTC_NAME)).astimezone(where)
    return f"in the next window, {local:%a %H:%M} {name}"
