"""What a user reads of a sequence that enrolls by itself (R41): its setting with how many
it enrolled over the last day (for one person, `automatic_outlook`).

Read-only: the setting is changed by `auto_enroll.switch`, people are enrolled by
`automatic.run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.clock import as_stored
from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services.enrollments import automatic
from optout.services.sequences import auto_enroll
from optout.services.sequences.auto_enroll import Setting


@dataclass(frozen=True)
class Status:
    """A sequence's automatic enrollment as its page shows it."""

    on: bool
    starts: datetime | None
    ends: datetime | None
    enrolled_last_day: int
    has_audience: bool

    @property
    def words(self) -> str:
        """ "on from …, until …" or "off"; a page capitalizes it."""
        if not self.on:
            return "off"
        parts = ["on"]
        if self.starts is not None:
            parts.append(f"from {self.starts:%Y-%m-%d %H:%M} UTC")
        if self.ends is not None:
            parts.append(f"until {self.ends:%Y-%m-%d %H:%M} UTC")
        return " ".join(parts)


def status(db: Connection, *, workspace_id: int, sequence_id: int, now: datetime) -> Status:
    found = auto_enroll.setting(db, sequence_id=sequence_id)
    s = t.sequences
    counts = automatic.enrolled_today(db, workspace_id=workspace_id, now=now)
    audience = db.scalar(
        sa.select(s.c.audience_id).where(s.c.id == sequence_id, s.c.workspace_id == workspace_id)
    )
    return Status(
        on=found.on,
        starts=found.starts,
        ends=found.ends,
        enrolled_last_day=counts.get(sequence_id, 0),
        has_audience=audience is not None,
    )


def waiting(db: Connection, *, sequence_id: int) -> int:
    """How many people the next pass is to ask about for the sequence."""
    q = t.enrollment_queue
    return int(db.scalar(sa.select(sa.func.count()).where(q.c.sequence_id == sequence_id)) or 0)


def parse_moment(text: str | None, *, what: str) -> datetime | None:
    """A date, or a date and time (UTC), as typed in a form or on a command line; empty:
    none."""
    if text is None or not text.strip():
        return None
    try:
        return as_stored(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise InvalidInput(
            f"{what} {text.strip()!r} is not a date and time; write it like 2026-12-31 09:00"
        ) from None


def setting_json(found: Setting) -> dict[str, object]:
    return {
        "enroll_automatically": found.on,
        "from": found.starts.isoformat(sep=" ") if found.starts else None,
        "until": found.ends.isoformat(sep=" ") if found.ends else None,
    }


@dataclass(frozen=True)
class Enrolling:
    """One sequence on the dashboard: whether it enrolls by itself now, how many it
    enrolled automatically over the last day, and how many of its audience it keeps out."""

    sequence_id: int
    name: str
    on: bool
    enrolled_last_day: int
    not_enrolled: int


def per_sequence(db: Connection, *, workspace_id: int, now: datetime) -> list[Enrolling]:
    """The sequences that enroll by themselves, or enrolled someone automatically over the
    last day, most enrolled first."""
    s, e, k = t.sequences, t.enrollments, t.enrollment_skips
    enrolled = (
        sa.select(e.c.sequence_id, sa.func.count().label("n"))
        .where(
            e.c.workspace_id == workspace_id,
            e.c.enrolled_by == automatic.ACTOR,
            e.c.enrolled_at > now - timedelta(days=1),
        )
        .group_by(e.c.sequence_id)
        .subquery()
    )
    skipped = (
        sa.select(k.c.sequence_id, sa.func.count().label("n"))
        .where(
            k.c.workspace_id == workspace_id,
            k.c.sequence_id.in_(
                sa.select(s.c.id).where(s.c.workspace_id == workspace_id, s.c.auto_enroll.is_(True))
            ),
        )
        .group_by(k.c.sequence_id)
        .subquery()
    )
    count = sa.func.coalesce(enrolled.c.n, 0)
    rows = db.execute(
        sa.select(s.c.id, s.c.name, s.c.auto_enroll, count, sa.func.coalesce(skipped.c.n, 0))
        .outerjoin(enrolled, enrolled.c.sequence_id == s.c.id)
        .outerjoin(skipped, skipped.c.sequence_id == s.c.id)
        .where(
            s.c.workspace_id == workspace_id,
            sa.or_(s.c.auto_enroll.is_(True), enrolled.c.n.is_not(None)),
        )
        .order_by(count.desc(), s.c.name)
    )
    return [
        Enrolling(
            sequence_id=sequence_id,
            name=name,
            on=bool(on),
            enrolled_last_day=int(n),
            not_enrolled=int(left_out),
        )
        for sequence_id, name, on, n, left_out in rows
    ]
