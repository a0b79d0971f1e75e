"""Automatic enrollment from a sequence's audience, and the "not enrolled" view (R30).

A refresh enrolls every eligible member in one set-based pass and keeps, for
every member it left out, the first check of R16 that stopped them (and which
exclusion), so nobody has to switch rules off one by one to find the culprit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services.enrollments import enrolling
from optout.services.enrollments.refusals import REASONS, keep_as_not_enrolled
from optout.services.sequences import audiences, definitions

# What each check is called in the not-enrolled view (the words of an enrollment refusal).
SUMMARIES = REASONS


@dataclass(frozen=True)
class Refreshed:
    members: int
    enrolled: int
    skipped: int


def refresh(
    db: Connection, *, workspace_id: int, sequence: str, actor: str, now: datetime
) -> Refreshed:
    target = definitions.spec_by_name(db, workspace_id=workspace_id, name=sequence)
    audience_id = definitions.audience_id(db, workspace_id=workspace_id, sequence_id=target.id)
    if audience_id is None:
        raise InvalidInput(f"sequence {sequence!r} has no audience to enroll from")
    spec = audiences.spec(db, workspace_id=workspace_id, audience_id=audience_id)
    members = audiences.members(spec, workspace_id=workspace_id, now=now)
    result = enrolling.enroll(
        db,
        workspace_id=workspace_id,
        sequence_id=target.id,
        people=members,
        actor=actor,
        now=now,
        audience_id=audience_id,
    )
    skipped = _record_skips(db, workspace_id=workspace_id, sequence_id=target.id, now=now)
    return Refreshed(members=result.requested, enrolled=result.enrolled, skipped=skipped)


def _record_skips(db: Connection, *, workspace_id: int, sequence_id: int, now: datetime) -> int:
    """Keep who this enrollment left out, and why, in place of the last run's list: the
    refusals `enrolling.enroll` staged (each with the first check that stopped them,
    and which exclusion), members already in the sequence left aside."""
    k = t.enrollment_skips
    db.execute(k.delete().where(k.c.sequence_id == sequence_id))
    keep_as_not_enrolled(db, workspace_id=workspace_id, sequence_id=sequence_id, now=now)
    return int(db.scalar(sa.select(sa.func.count()).where(k.c.sequence_id == sequence_id)) or 0)


@dataclass(frozen=True)
class NotEnrolled:
    email: str
    name: str
    check: str
    reason: str
    exclusion: str | None
    checked_at: datetime


def not_enrolled(
    db: Connection, *, workspace_id: int, sequence: str, limit: int = 100, offset: int = 0
) -> list[NotEnrolled]:
    """The people the last automatic enrollment left out, each with the reason."""
    target = definitions.spec_by_name(db, workspace_id=workspace_id, name=sequence)
    k, p, x = t.enrollment_skips, t.people, t.exclusions
    rows = db.execute(
        sa.select(p.c.email, p.c.first_name, p.c.last_name, k.c.check, x.c.name, k.c.checked_at)
        .join(p, p.c.id == k.c.person_id)
        .outerjoin(x, x.c.id == k.c.exclusion_id)
        .where(k.c.sequence_id == target.id)
        .order_by(k.c.check, p.c.email)
        .limit(limit)
        .offset(offset)
    )
    return [
        NotEnrolled(
            email=email,
            name=f"{first} {last}".strip(),
            check=check,
            reason=SUMMARIES.get(check, check) + (f" by {exclusion!r}" if exclusion else ""),
            exclusion=exclusion,
            checked_at=checked_at,
        )
        for email, first, last, check, exclusion, checked_at in rows
    ]
