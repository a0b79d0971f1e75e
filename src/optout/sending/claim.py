"""Claiming due emails: the guarantee that nobody ineligible is ever sent to (R14, R28).

One transaction picks a batch of due emails, re-checks eligibility for exactly
those people (opt-out, bounce, enforced exclusions: the send-time checks of
R16), cancels what fails with its reason, and marks the rest `sending` with a
lease. A change committed before this transaction always wins; one committed
after it finds the email already claimed. On PostgreSQL the batch is taken with
FOR UPDATE SKIP LOCKED, so any number of workers share the queue; on SQLite
the transaction starts with BEGIN IMMEDIATE, so claims are serialized.

Mailbox capacity (R37, R40): the claim takes only emails whose enrollment's mailbox is
active and has room now (its daily limit in its own day, its gap), at most as many per
mailbox as it has room for; the others keep their place and status and wait. The counts
are read and moved in this transaction, under the mailbox rows' locks.

Lock order, the same in every claim: the decision index's shared locks of the workspaces
(`_hold_decision_index`), then the mailbox rows (`mailboxes`, in id order,
FOR UPDATE SKIP LOCKED: a mailbox another claim holds is left to it), then the email
rows (`outbound_emails`, FOR UPDATE SKIP LOCKED), then whatever the send-time check
writes (enrollments, events). Nothing in a claim waits for a lock, so workers never
deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.db.hints import rarely
from optout.eligibility import Purpose
from optout.eligibility.gate import Gate
from optout.sending import capacity
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
    from_address: str  # `Name <address>` of its mailbox (the sequence's, without one)
    reply_to: str
    attempts: int
    message_id: str | None = None  # fixed by an earlier attempt: reused as it is
    mailbox_id: int | None = None
    signature: str = ""
    smtp_url: str | None = None  # the mailbox's own server (None: the shared relay)
    smtp_password: str | None = None  # encrypted, as stored


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
    """Claim up to `limit` due emails of active sequences whose mailboxes have room,
    after the send-time check."""
    _hold_decision_index(db, workspace_id=workspace_id)
    o, e = t.outbound_emails, t.enrollments
    allowances = capacity.lock_allowances(db, now=now, limit=limit, workspace_id=workspace_id)
    chosen = _candidates(now=now, limit=limit, allowances=allowances, workspace_id=workspace_id)
    ids = list(db.scalars(chosen))
    if not ids:
        return ClaimResult([], 0)
    stage_ids(db, claimed_emails, ids)
    cancelled = _gate(db, now=now)
    mailbox = sa.select(e.c.mailbox_id).where(e.c.id == o.c.enrollment_id).scalar_subquery()
    claimed = db.execute(
        o.update()
        .where(o.c.id.in_(sa.select(claimed_emails.c.id)), _due(now))
        .values(
            status="sending",
            lease_until=now + lease,
            attempts=o.c.attempts + 1,
            mailbox_id=mailbox,
        )
        .returning(o.c.id, o.c.mailbox_id)
    ).all()
    per_mailbox: dict[int, int] = {}
    for _, mailbox_id in claimed:
        if mailbox_id is not None:
            per_mailbox[mailbox_id] = per_mailbox.get(mailbox_id, 0) + 1
    capacity.count_claims(db, allowances=allowances, claimed=per_mailbox, now=now)
    return ClaimResult(_load(db, sorted(i for i, _ in claimed)), cancelled)


# How many due emails (of mailboxes with room) one claim ranks, per email it may claim:
# the earliest due; a mailbox whose emails lie beyond is served by the next claim.
CANDIDATES_PER_EMAIL = 10


def _candidates(
    *,
    now: datetime,
    limit: int,
    allowances: Mapping[int, capacity.Allowance],
    workspace_id: int | None,
) -> sa.Select[Any]:
    """The ids of the emails to claim, locked: due, of an active sequence and enrollment,
    of a mailbox locked with room (at most its room, earliest due first) or of an
    enrollment without a mailbox (sent from the sequence's From address, no limit)."""
    o, e, s = t.outbound_emails, t.enrollments, t.sequences
    due = (
        sa.select(o.c.id, o.c.due_at, e.c.mailbox_id)
        .join(e, e.c.id == o.c.enrollment_id)
        .join(s, s.c.id == e.c.sequence_id)
        # Few of the queued emails are due now: start from them, not from the sequences.
        .where(
            rarely(_due(now)),
            s.c.status == "active",
            e.c.status.in_(t.ACTIVE_STATUSES),
            sa.or_(e.c.mailbox_id.is_(None), e.c.mailbox_id.in_(list(allowances))),
        )
        .order_by(o.c.due_at, o.c.id)
        .limit(max(limit * CANDIDATES_PER_EMAIL, 1000))
    )
    if workspace_id is not None:
        due = due.where(o.c.workspace_id == workspace_id)
    inner = due.subquery()
    ranked = sa.select(
        inner.c.id,
        inner.c.mailbox_id,
        sa.func.row_number()
        .over(partition_by=inner.c.mailbox_id, order_by=(inner.c.due_at, inner.c.id))
        .label("rank"),
    ).subquery()
    room: sa.ColumnElement[int] = sa.literal(limit)
    if allowances:
        room = sa.case(
            {m: a.emails for m, a in allowances.items()}, value=ranked.c.mailbox_id, else_=limit
        )
    chosen = sa.select(ranked.c.id).where(
        sa.or_(ranked.c.mailbox_id.is_(None), ranked.c.rank <= room)
    )
    return (
        sa.select(o.c.id)
        .where(o.c.id.in_(chosen), _due(now))
        .order_by(o.c.due_at, o.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


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
    o, e, s, st, p, c, b = (
        t.outbound_emails,
        t.enrollments,
        t.sequences,
        t.sequence_steps,
        t.people,
        t.companies,
        t.mailboxes,
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
                b.c.address.label("mailbox_address"),
                b.c.display_name,
                b.c.signature,
                b.c.smtp_url,
                b.c.smtp_password,
                e.c.mailbox_id,
                s.c.reply_to,
                o.c.attempts,
                o.c.message_id,
                p.c.id.label("person_id"),
                c.c.id.label("company_id"),
            )
            .join(e, e.c.id == o.c.enrollment_id)
            .join(s, s.c.id == e.c.sequence_id)
            .join(st, st.c.id == o.c.step_id)
            .outerjoin(b, b.c.id == e.c.mailbox_id)
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
            from_address=_sender(r),
            reply_to=r["reply_to"],
            attempts=r["attempts"],
            message_id=r["message_id"],
            mailbox_id=r["mailbox_id"],
            signature=r["signature"] or "",
            smtp_url=r["smtp_url"],
            smtp_password=r["smtp_password"],
        )
        for r in rows
    ]


def _sender(row: Mapping[Any, Any]) -> str:
    """The From of a claimed email: its mailbox, or the sequence's From without one."""
    if row["mailbox_address"] is None:
        return str(row["from_address"])
    return formataddr((str(row["display_name"] or ""), str(row["mailbox_address"])))
