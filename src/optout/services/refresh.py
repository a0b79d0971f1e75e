"""Automatic enrollment from a sequence's audience, and the "not enrolled" view (R30).

A refresh enrolls every eligible member in one set-based pass and keeps, for
every member it left out, the first check of R16 that stopped them (and which
exclusion), so nobody has to switch rules off one by one to find the culprit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import Purpose, Situation
from optout.eligibility.checks import ExclusionTier, SqlEnv
from optout.eligibility.precedence import PRECEDENCE
from optout.errors import InvalidInput
from optout.services import audiences, enrollments, sequences
from optout.services.eligibility import situation
from optout.services.enrollment_refusals import REASONS
from optout.services.monitoring import reached_among

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
    target = sequences.spec_by_name(db, workspace_id=workspace_id, name=sequence)
    audience_id = sequences.audience_id(db, workspace_id=workspace_id, sequence_id=target.id)
    if audience_id is None:
        raise InvalidInput(f"sequence {sequence!r} has no audience to enroll from")
    spec = audiences.spec(db, workspace_id=workspace_id, audience_id=audience_id)
    members = audiences.members(spec, workspace_id=workspace_id, now=now)
    result = enrollments.enroll(
        db,
        workspace_id=workspace_id,
        sequence_id=target.id,
        people=members,
        actor=actor,
        now=now,
        audience_id=audience_id,
    )
    where = situation(
        db,
        workspace_id=workspace_id,
        sequence_id=target.id,
        purpose=Purpose.ENROLL,
        now=now,
        audience_id=audience_id,
    )
    skipped = _record_skips(db, where=where, members=members, now=now)
    return Refreshed(members=result.requested, enrolled=result.enrolled, skipped=skipped)


def _record_skips(
    db: Connection, *, where: Situation, members: sa.Select[Any], now: datetime
) -> int:
    p, c, e, k = t.people, t.companies, t.enrollments, t.enrollment_skips
    env = SqlEnv(person=p, company=c)
    whens = [
        (predicate, rule.check.name)
        for rule in PRECEDENCE
        if Purpose.ENROLL in rule.purposes and rule.check.name != "already_enrolled"
        if (predicate := rule.check.blocks_sql(env, where)) is not None
    ]
    db.execute(k.delete().where(k.c.sequence_id == where.sequence.id))
    active = sa.select(e.c.person_id).where(
        e.c.sequence_id == where.sequence.id, e.c.status.in_(t.ACTIVE_STATUSES)
    )
    if not whens:
        return 0
    reason = sa.case(*whens, else_=sa.null())
    left_out = (
        sa.select(
            sa.literal(where.workspace_id, sa.Integer),
            sa.literal(where.sequence.id, sa.Integer),
            p.c.id,
            reason,
            sa.literal(now, sa.DateTime),
        )
        .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
        .where(p.c.id.in_(members), p.c.id.not_in(active), reason.is_not(None))
    )
    db.execute(
        k.insert().from_select(
            ["workspace_id", "sequence_id", "person_id", "check", "checked_at"], left_out
        )
    )
    for rule in PRECEDENCE:
        if isinstance(rule.check, ExclusionTier):
            _attribute(db, where=where, check=rule.check, now=now)
    return int(
        db.scalar(sa.select(sa.func.count()).where(k.c.sequence_id == where.sequence.id)) or 0
    )


def _attribute(db: Connection, *, where: Situation, check: ExclusionTier, now: datetime) -> None:
    """Name the (lowest-id) exclusion that stopped each person skipped by `check`."""
    k = t.enrollment_skips
    applying = [e for e in check.candidates(where) if check.not_applying(e, where) is None]
    if not applying or not where.sequence.ruleset.exclusions_enabled:
        return
    mine = sa.and_(k.c.sequence_id == where.sequence.id, k.c.check == check.name)
    among = sa.select(k.c.person_id).where(mine)
    for rule in sorted(applying, key=lambda x: x.id):
        reached = reached_among(rule, workspace_id=where.workspace_id, among=among, now=now)
        db.execute(
            k.update()
            .where(mine, k.c.exclusion_id.is_(None), k.c.person_id.in_(reached))
            .values(exclusion_id=rule.id)
        )


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
    target = sequences.spec_by_name(db, workspace_id=workspace_id, name=sequence)
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
