"""Claiming due emails: the guarantee that nobody ineligible is ever sent to (R14, R28).

One transaction picks a batch of due emails, re-checks eligibility for exactly
those people (opt-out, bounce, enforced exclusions: the send-time checks of
R16), cancels what fails with its reason, and marks the rest `sending` with a
lease. A change committed before this transaction always wins; one committed
after it finds the email already claimed. On PostgreSQL the batch is taken with
FOR UPDATE SKIP LOCKED, so any number of workers share the queue; on SQLite
the transaction starts with BEGIN IMMEDIATE, so claims are serialized.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.db.hints import rarely
from optout.eligibility import Purpose
from optout.eligibility.gate import Gate
from optout.services import decision_index
from optout.services.eligibility import facts, situation
from optout.services.enforcement import end_enrollments
from optout.services.staging import claimed_emails, rule_hits, stage_ids, stage_rows

DEFAULT_LEASE = timedelta(minutes=5)
ACTOR = "worker"


@dataclass(frozen=True)
class Claim:
    """One email to deliver now, with what rendering needs."""

    email_id: int
    workspace_id: int
    enrollment_id: int
    sequence_id: int
    step_id: int
    position: int
    person: Mapping[str, Any]
    company: Mapping[str, Any] | None
    subject: str
    body_text: str
    body_html: str
    from_address: str
    reply_to: str
    attempts: int
    message_id: str | None = None  # fixed by an earlier attempt: reused as it is


@dataclass(frozen=True)
class ClaimResult:
    claims: list[Claim]
    cancelled: int  # emails cancelled by the send-time check


def _due(now: datetime) -> sa.ColumnElement[bool]:
    o = t.outbound_emails
    return sa.or_(
        sa.and_(o.c.status == "queued", o.c.due_at <= now),
        # A crashed worker's claim that never reached the mail server (one that did is
        # settled by recovery.settle_expired: marked sent, or held in doubt).
        sa.and_(
            o.c.status == "sending",
            o.c.lease_until < now,
            o.c.handed_over_at.is_(None),
            o.c.accepted_at.is_(None),
        ),
    )


def claim(
    db: Connection,
    *,
    now: datetime,
    limit: int = 200,
    lease: timedelta = DEFAULT_LEASE,
    workspace_id: int | None = None,
) -> ClaimResult:
    """Claim up to `limit` due emails of active sequences, after the send-time check."""
    _hold_decision_index(db, workspace_id=workspace_id)
    o, e, s = t.outbound_emails, t.enrollments, t.sequences
    query = (
        sa.select(o.c.id)
        .join(e, e.c.id == o.c.enrollment_id)
        .join(s, s.c.id == e.c.sequence_id)
        # Few of the queued emails are due now: start from them, not from the sequences.
        .where(rarely(_due(now)), s.c.status == "active", e.c.status.in_(t.ACTIVE_STATUSES))
        .order_by(o.c.due_at, o.c.id)
        .limit(limit)
        .with_for_update(of=o, skip_locked=True)
    )
    if workspace_id is not None:
        query = query.where(o.c.workspace_id == workspace_id)
    ids = list(db.scalars(query))
    if not ids:
        return ClaimResult([], 0)
    stage_ids(db, claimed_emails, ids)
    cancelled = _gate(db, now=now)
    claimed = db.execute(
        o.update()
        .where(o.c.id.in_(sa.select(claimed_emails.c.id)), _due(now))
        .values(status="sending", lease_until=now + lease, attempts=o.c.attempts + 1)
        .returning(o.c.id)
    ).scalars()
    return ClaimResult(_load(db, sorted(claimed)), cancelled)


def _hold_decision_index(db: Connection, *, workspace_id: int | None) -> None:
    """The decision index's shared locks of the workspaces claimed from, in id order,
    before any email row is locked: the lock order of `services.decision_index`, so a
    claim never holds emails while it waits for an exclusion save that waits for them."""
    w = t.workspaces
    ids = (
        [workspace_id]
        if workspace_id is not None
        else db.scalars(sa.select(w.c.id).order_by(w.c.id)).all()
    )
    for each in ids:
        decision_index.hold(db, workspace_id=each)


def _gate(db: Connection, *, now: datetime) -> int:
    """End the enrollments of claimed emails whose person fails a send-time check.

    The claimed batch is small (one batch of the worker), so each person is decided
    with the Python form of the checks, the one explain uses, over facts loaded in a
    fixed number of queries; which exclusions match them comes from the decision index,
    so only those are evaluated (for their evidence). The endings are written set-based.
    """
    o, e = t.outbound_emails, t.enrollments
    rows = db.execute(
        sa.select(e.c.workspace_id, e.c.sequence_id, e.c.id, e.c.person_id)
        .join(o, o.c.enrollment_id == e.c.id)
        .where(o.c.id.in_(sa.select(claimed_emails.c.id)))
    ).all()
    groups: dict[tuple[int, int], dict[int, list[int]]] = {}
    for workspace_id, sequence_id, enrollment_id, person_id in rows:
        groups.setdefault((workspace_id, sequence_id), {}).setdefault(person_id, []).append(
            enrollment_id
        )
    blocked: dict[tuple[int, str, str], list[dict[str, int | None]]] = {}
    for (workspace_id, sequence_id), by_person in groups.items():
        where = situation(
            db, workspace_id=workspace_id, sequence_id=sequence_id, purpose=Purpose.SEND, now=now
        )
        known = facts(
            db,
            workspace_id=workspace_id,
            person_ids=list(by_person),
            sequence_id=sequence_id,
            matches_for=where,
        )
        gate = Gate(where)
        for person_id, person_facts in known.items():
            reason = gate.first_block(person_facts)
            if reason is None:
                continue
            status = _ENDING.get(reason.check, "unenrolled")
            key = (workspace_id, status, reason.check)
            blocked.setdefault(key, []).extend(
                {"enrollment_id": i, "exclusion_id": reason.exclusion_id}
                for i in by_person[person_id]
            )
    cancelled = 0
    for (workspace_id, status, check), targets in blocked.items():
        stage_rows(db, rule_hits, targets)
        removal = end_enrollments(
            db,
            workspace_id=workspace_id,
            targets=sa.select(rule_hits.c.enrollment_id, rule_hits.c.exclusion_id),
            status=status,
            reason=f"{_SAYING.get(check, check.replace('_', ' '))} "
            "(checked when the email was claimed)",
            rule=check,
            actor=ACTOR,
            now=now,
        )
        cancelled += removal.emails_cancelled
    return cancelled


# A spam complaint ends an enrollment as an opt-out does (R36).
_ENDING = {"complained": "opted_out", "opted_out": "opted_out", "bounced": "bounced"}
_SAYING = {"complained": "spam complaint"}


def _load(db: Connection, ids: list[int]) -> list[Claim]:
    if not ids:
        return []
    o, e, s, st, p, c = (
        t.outbound_emails,
        t.enrollments,
        t.sequences,
        t.sequence_steps,
        t.people,
        t.companies,
    )
    rows = (
        db.execute(
            sa.select(
                o.c.id.label("email_id"),
                o.c.workspace_id,
                o.c.enrollment_id,
                e.c.sequence_id,
                o.c.step_id,
                st.c.position,
                st.c.subject,
                st.c.body_text,
                st.c.body_html,
                s.c.from_address,
                s.c.reply_to,
                o.c.attempts,
                o.c.message_id,
                p.c.id.label("person_id"),
                c.c.id.label("company_id"),
            )
            .join(e, e.c.id == o.c.enrollment_id)
            .join(s, s.c.id == e.c.sequence_id)
            .join(st, st.c.id == o.c.step_id)
            .join(p, p.c.id == o.c.person_id)
            .outerjoin(c, c.c.id == p.c.company_id)
            .where(o.c.id.in_(ids))
            .order_by(o.c.id)
        )
        .mappings()
        .all()
    )
    persons = {
        r["id"]: dict(r)
        for r in db.execute(
            sa.select(p).where(p.c.id.in_({r["person_id"] for r in rows}))
        ).mappings()
    }
    companies = {
        r["id"]: dict(r)
        for r in db.execute(
            sa.select(c).where(c.c.id.in_({r["company_id"] for r in rows if r["company_id"]}))
        ).mappings()
    }
    return [
        Claim(
            email_id=r["email_id"],
            workspace_id=r["workspace_id"],
            enrollment_id=r["enrollment_id"],
            sequence_id=r["sequence_id"],
            step_id=r["step_id"],
            position=r["position"],
            person=persons[r["person_id"]],
            company=companies.get(r["company_id"]),
            subject=r["subject"],
            body_text=r["body_text"],
            body_html=r["body_html"],
            from_address=r["from_address"],
            reply_to=r["reply_to"],
            attempts=r["attempts"],
            message_id=r["message_id"],
        )
        for r in rows
    ]
