"""Enrolling people in sequences and unenrolling them.

Every path goes through eligibility: the people are inserted by one
INSERT ... SELECT over the eligible set, so nobody is let through by a manual
path (R17), and the company cap also holds within the batch (R27).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import Purpose
from optout.eligibility.sql import eligible_people
from optout.errors import InvalidInput
from optout.services import events
from optout.services.eligibility import situation
from optout.services.enforcement import Removal, end_enrollments
from optout.services.enrollments import refusals
from optout.services.mailboxes.assignment import assign
from optout.services.send_queue.schedule import queue_next
from optout.services.staging import new_enrollments, requested_people, stage, stage_ids


@dataclass(frozen=True)
class Enrolled:
    requested: int
    enrolled: int

    @property
    def blocked(self) -> int:
        return self.requested - self.enrolled


def enroll(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    people: sa.Select[Any] | Sequence[int],
    actor: str,
    now: datetime,
    audience_id: int | None = None,
) -> Enrolled:
    """Enroll whichever of `people` are eligible now; `audience_id` marks an automatic
    enrollment from that audience (its switch-offs and persona apply)."""
    where = situation(
        db,
        workspace_id=workspace_id,
        sequence_id=sequence_id,
        purpose=Purpose.ENROLL,
        now=now,
        audience_id=audience_id,
    )
    p = t.people
    # The people asked about, staged: every rule is then asked about them alone.
    asked = (
        people
        if isinstance(people, sa.Select)
        else sa.select(p.c.id).where(p.c.id.in_(list(people)))
    )
    inner = asked.subquery()
    requested = stage(
        db,
        requested_people,
        sa.select(inner.c[inner.c.keys()[0]].label("id"))
        .join(p, p.c.id == inner.c[inner.c.keys()[0]])
        .where(p.c.workspace_id == workspace_id)
        .distinct(),
    )
    eligible = eligible_people(where, among=requested_people)
    cap = where.sequence.ruleset.max_active_per_company
    if cap is not None:
        eligible = _within_cap(
            eligible, sequence_id=sequence_id, cap=cap, asked=sa.select(requested_people.c.id)
        )
    chosen = eligible.subquery()
    e = t.enrollments
    source = "audience" if audience_id is not None else "manual"
    inserted = db.execute(
        e.insert()
        .from_select(
            [
                "workspace_id",
                "sequence_id",
                "person_id",
                "status",
                "source",
                "audience_id",
                "next_position",
                "next_run_at",
                "enrolled_at",
                "enrolled_by",
            ],
            sa.select(
                sa.literal(workspace_id),
                sa.literal(sequence_id),
                chosen.c.id,
                sa.literal("not_started"),
                sa.literal(source),
                sa.literal(audience_id, sa.Integer),
                sa.literal(0),
                sa.literal(now, sa.DateTime),
                sa.literal(now, sa.DateTime),
                sa.literal(actor),
            ),
        )
        .returning(e.c.id)
    ).all()
    stage_ids(db, new_enrollments, [row[0] for row in inserted])
    fresh = sa.select(new_enrollments.c.id)
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind="enrolled",
        actor=actor,
        now=now,
        detail={"source": source},
        select=sa.select(e.c.id.label("enrollment_id"), e.c.person_id, e.c.sequence_id).where(
            e.c.id.in_(fresh)
        ),
    )
    refusals.record_refusals(
        db,
        where=where,
        asked=requested_people,
        enrolled=sa.select(e.c.person_id).where(e.c.id.in_(fresh)),
        actor=actor,
        now=now,
    )
    assign(db, workspace_id=workspace_id, sequence_id=sequence_id, enrollment_ids=fresh, now=now)
    queue_next(
        db,
        workspace_id=workspace_id,
        sequence_id=sequence_id,
        enrollment_ids=fresh,
        after=None,
        now=now,
        actor=actor,
    )
    return Enrolled(requested=requested, enrolled=len(inserted))


# The aliases of `_within_cap`, made once: building an alias proxies every column of its
# table, which cost more than the rest of the statement.
_CAPPED_PEOPLE = t.people.alias("capped_people")
_CAPPED_ENROLLMENTS = t.enrollments.alias("capped_enrollments")
_ASKED_PEOPLE = t.people.alias("asked_people")
_CANDIDATE_PEOPLE = t.people.alias("candidate_people")


def _within_cap(
    eligible: sa.Select[Any], *, sequence_id: int, cap: int, asked: sa.Select[Any]
) -> sa.Select[Any]:
    """Keep, per company, only as many as the cap still allows (people without company
    pass). The active enrollments are counted at the companies of the people `asked`
    about only, not at every company of the sequence."""
    p, e, theirs = _CAPPED_PEOPLE, _CAPPED_ENROLLMENTS, _ASKED_PEOPLE
    active = (
        sa.select(p.c.company_id, sa.func.count().label("n"))
        .join(e, e.c.person_id == p.c.id)
        .where(
            e.c.sequence_id == sequence_id,
            e.c.status.in_(t.ACTIVE_STATUSES),
            p.c.company_id.in_(sa.select(theirs.c.company_id).where(theirs.c.id.in_(asked))),
        )
        .group_by(p.c.company_id)
        .subquery()
    )
    base = _CANDIDATE_PEOPLE
    candidates = eligible.subquery()
    ranked = (
        sa.select(
            candidates.c.id,
            base.c.company_id,
            sa.func.row_number()
            .over(partition_by=base.c.company_id, order_by=candidates.c.id)
            .label("rank"),
            sa.func.coalesce(active.c.n, 0).label("already"),
        )
        .join(base, base.c.id == candidates.c.id)
        .outerjoin(active, active.c.company_id == base.c.company_id)
        .subquery()
    )
    return sa.select(ranked.c.id).where(
        sa.or_(ranked.c.company_id.is_(None), ranked.c.rank + ranked.c.already <= cap)
    )


def unenroll(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    person_ids: Sequence[int],
    actor: str,
    now: datetime,
    reason: str = "unenrolled manually",
) -> Removal:
    """Remove people from one sequence only: not an opt-out (R8)."""
    e = t.enrollments
    return end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=sa.select(e.c.id.label("enrollment_id")).where(
            e.c.sequence_id == sequence_id, e.c.person_id.in_(list(person_ids))
        ),
        status="unenrolled",
        reason=reason,
        rule="manual_unenroll",
        actor=actor,
        now=now,
    )


def bulk_unenroll(
    db: Connection,
    *,
    workspace_id: int,
    statuses: Sequence[str],
    actor: str,
    now: datetime,
    sequence_id: int | None = None,
    reason: str = "bulk unenroll",
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 25_000,
) -> Removal:
    """Unenroll every enrollment in `statuses` (of one sequence or all), set-based, in
    this one transaction (R10). With `progress`, the work runs in id windows of about
    `chunk` enrollments and `progress(done, total)` is called after each."""
    targets = _bulk_targets(workspace_id=workspace_id, statuses=statuses, sequence_id=sequence_id)
    e = t.enrollments
    bounds = targets.with_only_columns(sa.func.min(e.c.id), sa.func.max(e.c.id), sa.func.count())
    low, high, total = db.execute(bounds).one()
    if not total:
        return Removal(0, 0)
    windows = [(low, high)] if progress is None else _windows(low, high, total, chunk)
    ended = cancelled = 0
    for start, stop in windows:
        removal = end_enrollments(
            db,
            workspace_id=workspace_id,
            targets=targets.where(e.c.id.between(start, stop)),
            status="unenrolled",
            reason=reason,
            rule="bulk_unenroll",
            actor=actor,
            now=now,
        )
        ended += removal.enrollments_ended
        cancelled += removal.emails_cancelled
        if progress is not None:
            progress(ended, total)
    return Removal(ended, cancelled)


def _bulk_targets(
    *, workspace_id: int, statuses: Sequence[str], sequence_id: int | None
) -> sa.Select[Any]:
    wrong = set(statuses) - set(t.ACTIVE_STATUSES)
    if not statuses or wrong:
        raise InvalidInput(
            f"bulk unenroll takes active statuses ({', '.join(t.ACTIVE_STATUSES)}), "
            f"not {', '.join(sorted(wrong)) or 'nothing'}"
        )
    e = t.enrollments
    targets = sa.select(e.c.id.label("enrollment_id")).where(
        e.c.workspace_id == workspace_id, e.c.status.in_(list(statuses))
    )
    if sequence_id is not None:
        targets = targets.where(e.c.sequence_id == sequence_id)
    return targets


@dataclass(frozen=True)
class BulkScope:
    """What a bulk unenroll run in steps covers: the enrollments that match when it
    starts (up to `last_id`), `total` of them."""

    total: int
    last_id: int


def bulk_unenroll_scope(
    db: Connection,
    *,
    workspace_id: int,
    statuses: Sequence[str],
    sequence_id: int | None = None,
) -> BulkScope:
    targets = _bulk_targets(workspace_id=workspace_id, statuses=statuses, sequence_id=sequence_id)
    e = t.enrollments
    high, total = db.execute(targets.with_only_columns(sa.func.max(e.c.id), sa.func.count())).one()
    return BulkScope(total=total, last_id=high or 0)


@dataclass(frozen=True)
class BulkStep:
    removal: Removal
    reached_id: int  # the highest enrollment id this step looked at; the next starts above


def bulk_unenroll_step(
    db: Connection,
    *,
    workspace_id: int,
    statuses: Sequence[str],
    after_id: int,
    last_id: int,
    limit: int,
    actor: str,
    now: datetime,
    sequence_id: int | None = None,
    reason: str = "bulk unenroll",
) -> BulkStep:
    """Unenroll the next `limit` enrollments that still match, with ids above `after_id`
    and none above `last_id`, lowest first: one set-based step of a bulk unenroll that
    commits as it goes (R10). A step run again after a crash finds only what is left
    (what an earlier step ended no longer matches); `reached_id == after_id` means the
    work is over."""
    targets = _bulk_targets(workspace_id=workspace_id, statuses=statuses, sequence_id=sequence_id)
    e = t.enrollments
    window = targets.where(e.c.id > after_id, e.c.id <= last_id)
    chunk = window.order_by(e.c.id).limit(limit).subquery()
    reached = db.scalar(sa.select(sa.func.max(chunk.c.enrollment_id)))
    if reached is None:
        return BulkStep(Removal(0, 0), after_id)
    removal = end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=window.where(e.c.id <= reached),
        status="unenrolled",
        reason=reason,
        rule="bulk_unenroll",
        actor=actor,
        now=now,
    )
    return BulkStep(removal, reached)


def _windows(low: int, high: int, total: int, chunk: int) -> list[tuple[int, int]]:
    """Id ranges covering [low, high] that each hold about `chunk` rows."""
    span = high - low + 1
    width = max(1, span * chunk // total)
    return [(start, min(start + width - 1, high)) for start in range(low, high + 1, width)]


def count_by_status(
    db: Connection, *, workspace_id: int, sequence_id: int | None = None
) -> dict[str, int]:
    e = t.enrollments
    query = (
        sa.select(e.c.status, sa.func.count())
        .where(e.c.workspace_id == workspace_id)
        .group_by(e.c.status)
    )
    if sequence_id is not None:
        query = query.where(e.c.sequence_id == sequence_id)
    return {row[0]: row[1] for row in db.execute(query)}
