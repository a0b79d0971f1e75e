"""Ending enrollments and cancelling their queued emails, set-based, with an event for
each (R1, R13, R14, R35). Every path that removes people from sequences comes here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services import enrollment_queue, events
from optout.services.staging import enrollment_targets, stage

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
