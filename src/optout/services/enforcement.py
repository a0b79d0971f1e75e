"""Ending enrollments and cancelling their queued emails, set-based, with an event for
each (R1, R13, R14, R35). Every path that removes people from sequences comes here.

`end_enrollments` ends a set of enrollments for one reason; `end_each` ends a set whose
rows each carry their own status, reason, rule and actor (the replies, opt-outs, bounces
and complaints of a batch of inbound mail), in the same few statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services import enrollment_queue, events
from optout.services.staging import analyzed, enrollment_targets, stage

# The rules that end an enrollment because the person may not be in the sequence now, as
# opposed to someone's choice or the sequence's own course (a manual unenroll, a reply):
# in a sequence that enrolls by itself, such a person is listed as not enrolled with the
# reason, and enrolled again once nothing stops them.
_STOPPED_BY_A_RULE = ("exclusion", "enforced_exclusion", "exclusion_monitor")


def _stopped_by_a_rule(rule: str) -> bool:
    return rule in _STOPPED_BY_A_RULE or rule.startswith("exclusion:")


@dataclass(frozen=True)
class Removal:
    enrollments_ended: int
    emails_cancelled: int

    def __add__(self, other: Removal) -> Removal:
        return Removal(
            self.enrollments_ended + other.enrollments_ended,
            self.emails_cancelled + other.emails_cancelled,
        )


def end_enrollments(
    db: Connection,
    *,
    workspace_id: int,
    targets: sa.Select[Any],
    status: str,
    reason: str,
    rule: str,
    actor: str,
    now: datetime,
) -> Removal:
    """End every active enrollment selected by `targets` and cancel its queued emails.

    `targets` selects `enrollment_id` and, optionally, `exclusion_id` (the rule that
    removed each one). Enrollments that are no longer active are left alone, so
    running the same removal twice changes nothing the second time.
    """
    if status not in t.ENROLLMENT_STATUSES or status in t.ACTIVE_STATUSES:
        raise ValueError(f"{status!r} is not a final enrollment status")
    e, o, staged = t.enrollments, t.outbound_emails, enrollment_targets
    inner = targets.subquery()
    rule_column = (
        sa.func.min(inner.c.exclusion_id)
        if "exclusion_id" in inner.c
        else sa.literal(None, sa.Integer)
    )
    active = (
        sa.select(inner.c.enrollment_id, rule_column.label("exclusion_id"))
        .join(e, e.c.id == inner.c.enrollment_id)
        .where(e.c.workspace_id == workspace_id, e.c.status.in_(t.ACTIVE_STATUSES))
        .group_by(inner.c.enrollment_id)
    )
    count = stage(db, staged, active)
    if count == 0:
        return Removal(0, 0)
    detail = {"status": status, "reason": reason}

    queued = sa.and_(
        o.c.enrollment_id.in_(sa.select(staged.c.enrollment_id)), o.c.status == "queued"
    )
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind="email_cancelled",
        actor=actor,
        now=now,
        rule=rule,
        detail=detail,
        select=sa.select(
            o.c.id.label("email_id"),
            o.c.enrollment_id,
            o.c.person_id,
            staged.c.exclusion_id,
        )
        .join(staged, staged.c.enrollment_id == o.c.enrollment_id)
        .where(queued),
    )
    cancelled = db.execute(
        o.update().where(queued).values(status="cancelled", cancel_reason=reason)
    ).rowcount

    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind="enrollment_ended",
        actor=actor,
        now=now,
        rule=rule,
        detail=detail,
        select=sa.select(
            e.c.id.label("enrollment_id"), e.c.person_id, e.c.sequence_id, staged.c.exclusion_id
        ).join(staged, staged.c.enrollment_id == e.c.id),
    )
    ended = db.execute(
        e.update()
        .where(e.c.id.in_(sa.select(staged.c.enrollment_id)))
        .values(status=status, ended_at=now, end_reason=reason, next_run_at=None)
    ).rowcount
    if _stopped_by_a_rule(rule):
        enrollment_queue.queue_ended(
            db,
            workspace_id=workspace_id,
            enrollment_ids=sa.select(staged.c.enrollment_id),
            now=now,
        )
    enrollment_queue.requeue_capped(
        db, workspace_id=workspace_id, enrollment_ids=sa.select(staged.c.enrollment_id), now=now
    )
    return Removal(ended, cancelled)


# The enrollments `end_each` ends, each with its own status, reason, rule and actor.
_endings = sa.Table(
    "optout_enrollment_endings",
    sa.MetaData(),
    sa.Column("enrollment_id", sa.Integer, primary_key=True),
    sa.Column("exclusion_id", sa.Integer),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    prefixes=["TEMPORARY"],
)
_PER_ROW = ("status", "reason", "rule", "actor")


def end_each(
    db: Connection, *, workspace_id: int, targets: sa.Select[Any], now: datetime
) -> Removal:
    """`end_enrollments` for rows that each say why: `targets` selects `enrollment_id`,
    `status`, `reason`, `rule` and `actor`, and optionally `exclusion_id` and `rank`. An
    enrollment selected more than once ends as its row of lowest `rank` says (then of
    lowest status, reason, rule, actor: a fixed choice). Each ended enrollment and
    cancelled email gets the event `end_enrollments` gives it, with its row's status,
    reason, rule and actor."""
    e, o, en = t.enrollments, t.outbound_emails, _endings
    inner = targets.subquery()
    missing = [name for name in ("enrollment_id", *_PER_ROW) if name not in inner.c]
    if missing:
        raise TypeError(f"end_each needs the columns {missing}")
    exclusion = inner.c.exclusion_id if "exclusion_id" in inner.c else sa.literal(None, sa.Integer)
    rank = inner.c["rank"] if "rank" in inner.c else sa.literal(0, sa.Integer)
    ranked = (
        sa.select(
            inner.c.enrollment_id,
            exclusion.label("exclusion_id"),
            *(inner.c[name] for name in _PER_ROW),
            sa.func.row_number()
            .over(
                partition_by=inner.c.enrollment_id,
                order_by=(rank, *(inner.c[name] for name in _PER_ROW), exclusion),
            )
            .label("n"),
        )
        .join(e, e.c.id == inner.c.enrollment_id)
        .where(e.c.workspace_id == workspace_id, e.c.status.in_(t.ACTIVE_STATUSES))
        .subquery()
    )
    en.create(db, checkfirst=True)
    db.execute(en.delete())
    columns = ["enrollment_id", "exclusion_id", *_PER_ROW]
    db.execute(
        en.insert().from_select(
            columns, sa.select(*(ranked.c[c] for c in columns)).where(ranked.c.n == 1)
        )
    )
    statuses = set(db.scalars(sa.select(en.c.status).distinct()))
    if not statuses:
        return Removal(0, 0)
    wrong = sorted(s for s in statuses if s not in t.ENROLLMENT_STATUSES or s in t.ACTIVE_STATUSES)
    if wrong:
        raise ValueError(f"{wrong[0]!r} is not a final enrollment status")
    analyzed(db, en)
    ids = sa.select(en.c.enrollment_id)
    why = (
        en.c.actor.label("actor"),
        en.c.rule.label("rule"),
        events.detail_object(db, status=en.c.status, reason=en.c.reason),
    )

    def of(column: sa.ColumnElement[Any], key: sa.Column[Any]) -> Any:
        return sa.select(column).where(en.c.enrollment_id == key).scalar_subquery()

    queued = sa.and_(o.c.enrollment_id.in_(ids), o.c.status == "queued")
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind="email_cancelled",
        now=now,
        select=sa.select(
            o.c.id.label("email_id"), o.c.enrollment_id, o.c.person_id, en.c.exclusion_id, *why
        )
        .join(en, en.c.enrollment_id == o.c.enrollment_id)
        .where(queued),
    )
    cancelled = db.execute(
        o.update()
        .where(queued)
        .values(status="cancelled", cancel_reason=of(en.c.reason, o.c.enrollment_id))
    ).rowcount
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind="enrollment_ended",
        now=now,
        select=sa.select(
            e.c.id.label("enrollment_id"), e.c.person_id, e.c.sequence_id, en.c.exclusion_id, *why
        ).join(en, en.c.enrollment_id == e.c.id),
    )
    ended = db.execute(
        e.update()
        .where(e.c.id.in_(ids))
        .values(
            status=of(en.c.status, e.c.id),
            ended_at=now,
            end_reason=of(en.c.reason, e.c.id),
            next_run_at=None,
        )
    ).rowcount
    by_rule = sa.or_(en.c.rule.in_(_STOPPED_BY_A_RULE), en.c.rule.startswith("exclusion:"))
    if db.scalar(sa.select(sa.exists().where(by_rule))):
        enrollment_queue.queue_ended(
            db, workspace_id=workspace_id, enrollment_ids=ids.where(by_rule), now=now
        )
    enrollment_queue.requeue_capped(db, workspace_id=workspace_id, enrollment_ids=ids, now=now)
    return Removal(ended, cancelled)
