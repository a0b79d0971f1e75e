"""A trace of every refused enrollment (R35): one `enrollment_refused` event per person an
enrollment asked about and did not enroll, naming the sequence, the first check that
refused (R16 order) and, for an exclusion, which one.

Set-based whatever the number of people: the refusals are staged with one INSERT ...
SELECT whose CASE walks the checks in precedence order, the exclusion behind each
exclusion refusal is named with one UPDATE per exclusion that applies, and the events
are written with one INSERT ... SELECT.

An automatic enrollment from an audience asks about every member each time it runs: it
records only refusals that are new since its last run (another check, another
exclusion), and never one for a member already in the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.selectable import FromClause

from optout.db import tables as t
from optout.eligibility import Purpose, Situation
from optout.eligibility.checks import ExclusionTier, SqlEnv
from optout.eligibility.precedence import PRECEDENCE
from optout.services import decision_index, events
from optout.services.enrollments.refusal_words import REASONS as REASONS
from optout.services.enrollments.refusal_words import reason_words
from optout.services.monitoring import reached_among
from optout.services.staging import analyzed

KIND = "enrollment_refused"
# Up to this many refusals by an exclusion tier are named from the stored matches of the
# people; more, rule by rule in set-based statements.
NAMED_FROM_INDEX = 5000
# Not enrolled though no check refuses them alone: the batch itself filled the company cap.
WITHIN_BATCH = "company_cap"


@dataclass(frozen=True)
class Refusal:
    email: str
    check: str  # the machine-readable code: the refusing check's name
    reason: str
    exclusion: str | None


_metadata = sa.MetaData()

refused_people = sa.Table(
    "optout_refused_people",
    _metadata,
    sa.Column("person_id", sa.Integer, primary_key=True),
    sa.Column("check", sa.String(48), nullable=False),
    sa.Column("exclusion_id", sa.Integer),
    prefixes=["TEMPORARY"],
)


def record_refusals(
    db: Connection,
    *,
    where: Situation,
    asked: FromClause,
    enrolled: sa.Select[Any],
    actor: str,
    now: datetime,
) -> int:
    """Stage and record, for each person of `asked` (a table of person ids) whom the
    enrollment in `where` did not enroll (`enrolled` selects who it did), the check that
    refused them. Returns how many events were written."""
    automatic = where.audience is not None
    stage_refusals(db, where=where, asked=asked, enrolled=enrolled, automatic=automatic)
    r = refused_people
    rows = sa.select(
        r.c.person_id,
        sa.literal(where.sequence.id, sa.Integer).label("sequence_id"),
        r.c.exclusion_id,
        r.c.check.label("rule"),
    )
    if automatic:
        rows = rows.where(~_known_from_last_run(where.sequence.id))
    count = int(db.scalar(sa.select(sa.func.count()).select_from(rows.subquery())) or 0)
    if count:
        events.record_from_select(
            db,
            workspace_id=where.workspace_id,
            kind=KIND,
            actor=actor,
            now=now,
            detail={"source": "audience" if automatic else "manual"},
            select=rows,
        )
    return count


def stage_refusals(
    db: Connection,
    *,
    where: Situation,
    asked: FromClause,
    enrolled: sa.Select[Any],
    automatic: bool,
) -> int:
    """Fill `refused_people` with who was refused and by which check; `automatic` leaves
    out the people already active in the sequence (an audience's members stay members)."""
    p, c, e = t.people, t.companies, t.enrollments
    env = SqlEnv(person=p, company=c, among=asked)
    whens = [
        (predicate, rule.check.name)
        for rule in PRECEDENCE
        if Purpose.ENROLL in rule.purposes
        if not (automatic and rule.check.name == "already_enrolled")
        if (predicate := rule.check.blocks_sql(env, where)) is not None
    ]
    check: Any = sa.case(*whens, else_=WITHIN_BATCH) if whens else sa.literal(WITHIN_BATCH)
    query = (
        sa.select(p.c.id.label("person_id"), check.label("check"))
        .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
        .where(
            p.c.workspace_id == where.workspace_id,
            p.c.id.in_(sa.select(asked.c.id)),
            p.c.id.not_in(enrolled),
        )
    )
    if automatic:
        active = sa.select(e.c.person_id).where(
            e.c.sequence_id == where.sequence.id,
            e.c.status.in_(t.ACTIVE_STATUSES),
            e.c.person_id.in_(sa.select(asked.c.id)),
        )
        query = query.where(p.c.id.not_in(active))
    refused_people.create(db, checkfirst=True)
    db.execute(refused_people.delete())
    db.execute(refused_people.insert().from_select(["person_id", "check"], query))
    analyzed(db, refused_people)
    for rule in PRECEDENCE:
        if isinstance(rule.check, ExclusionTier):
            _name_exclusions(db, where=where, tier=rule.check)
    return int(db.scalar(sa.select(sa.func.count()).select_from(refused_people)) or 0)


def _name_exclusions(db: Connection, *, where: Situation, tier: ExclusionTier) -> None:
    """Name the (lowest-id) exclusion of `tier` behind each of its refusals: for a few
    people, from the decision index's stored matches in a few indexed reads; for many,
    set-based, one statement per rule until everyone is named."""
    r = refused_people
    unnamed = sa.and_(r.c.check == tier.name, r.c.exclusion_id.is_(None))
    few = list(db.scalars(sa.select(r.c.person_id).where(unnamed).limit(NAMED_FROM_INDEX + 1)))
    if not few:
        return
    if len(few) <= NAMED_FROM_INDEX:
        applying = tier.applying(where)
        ids = {exclusion.id for exclusion in applying}
        found = decision_index.matches_of(
            db,
            workspace_id=where.workspace_id,
            person_ids=few,
            exclusions=applying,
            now=where.now,
        )
        named = [
            {"person": person_id, "exclusion": min(hits)}
            for person_id, matched in found.items()
            if (hits := matched & ids)
        ]
        if named:
            db.execute(
                r.update()
                .where(r.c.person_id == sa.bindparam("person"))
                .values(exclusion_id=sa.bindparam("exclusion")),
                named,
            )
        return
    for exclusion in sorted(tier.applying(where), key=lambda x: x.id):
        waiting = sa.select(r.c.person_id).where(unnamed)
        if db.scalar(sa.select(sa.exists(waiting))) is not True:
            return
        reached = reached_among(
            exclusion, workspace_id=where.workspace_id, among=waiting, now=where.now
        )
        db.execute(
            r.update().where(unnamed, r.c.person_id.in_(reached)).values(exclusion_id=exclusion.id)
        )


def keep_as_not_enrolled(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    now: datetime,
    retry_at: Any = None,
    leave_out: tuple[str, ...] = (),
) -> None:
    """Write the refusals just staged (`refused_people`) as the sequence's not-enrolled
    rows, each with its check and exclusion, and `retry_at` (an SQL expression over the
    staged row, or None); refusals by a check of `leave_out` are not listed."""
    k, r = t.enrollment_skips, refused_people
    rows = sa.select(
        sa.literal(workspace_id, sa.Integer),
        sa.literal(sequence_id, sa.Integer),
        r.c.person_id,
        r.c.check,
        r.c.exclusion_id,
        sa.literal(now, sa.DateTime),
        retry_at if retry_at is not None else sa.null(),
    )
    if leave_out:
        rows = rows.where(r.c.check.not_in(leave_out))
    columns = "workspace_id sequence_id person_id check exclusion_id checked_at retry_at"
    db.execute(k.insert().from_select(columns.split(), rows))


def _known_from_last_run(sequence_id: int) -> sa.ColumnElement[bool]:
    """The refusal is the one the last automatic enrollment noted for this person."""
    k, r = t.enrollment_skips, refused_people
    same_exclusion = sa.or_(
        k.c.exclusion_id == r.c.exclusion_id,
        sa.and_(k.c.exclusion_id.is_(None), r.c.exclusion_id.is_(None)),
    )
    return sa.exists(
        sa.select(1).where(
            k.c.sequence_id == sequence_id,
            k.c.person_id == r.c.person_id,
            k.c.check == r.c.check,
            same_exclusion,
        )
    )


def staged(db: Connection, *, limit: int = 100) -> tuple[list[Refusal], int]:
    """The refusals of the enrollment just made on this connection, by address (at most
    `limit`), and how many there are in all."""
    r, p, x = refused_people, t.people, t.exclusions
    total = int(db.scalar(sa.select(sa.func.count()).select_from(r)) or 0)
    rows = db.execute(
        sa.select(p.c.email, r.c.check, x.c.name)
        .join(p, p.c.id == r.c.person_id)
        .outerjoin(x, x.c.id == r.c.exclusion_id)
        .order_by(p.c.email, p.c.id)
        .limit(limit)
    )
    return [
        Refusal(email, check, reason_words(check, exclusion), exclusion)
        for email, check, exclusion in rows
    ], total
