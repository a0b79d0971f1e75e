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
from optout.eligibility import Purpose
from optout.eligibility.checks import Bounced, OptedOut, SqlEnv
from optout.services.eligibility import situation
from optout.services.enforcement import end_enrollments
from optout.services.monitoring import recheck_people
from optout.services.staging import claimed_emails, stage_ids

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


@dataclass(frozen=True)
class ClaimResult:
    claims: list[Claim]
    cancelled: int  # emails cancelled by the send-time check


def _due(now: datetime) -> sa.ColumnElement[bool]:
    o = t.outbound_emails
    return sa.or_(
        sa.and_(o.c.status == "queued", o.c.due_at <= now),
        sa.and_(o.c.status == "sending", o.c.lease_until < now),  # a crashed worker's claim
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
    o, e, s = t.outbound_emails, t.enrollments, t.sequences
    query = (
        sa.select(o.c.id)
        .join(e, e.c.id == o.c.enrollment_id)
        .join(s, s.c.id == e.c.sequence_id)
        .where(_due(now), s.c.status == "active", e.c.status.in_(t.ACTIVE_STATUSES))
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


def _gate(db: Connection, *, now: datetime) -> int:
    """End the enrollments of claimed emails whose person fails a send-time check."""
    o, e, p, c = t.outbound_emails, t.enrollments, t.people, t.companies
    staged = sa.select(claimed_emails.c.id)
    before = _cancelled_count(db)
    pairs = db.execute(
        sa.select(e.c.workspace_id, e.c.sequence_id)
        .join(o, o.c.enrollment_id == e.c.id)
        .where(o.c.id.in_(staged))
        .distinct()
    ).all()
    env = SqlEnv(person=p, company=c)
    for workspace_id, sequence_id in pairs:
        where = situation(
            db,
            workspace_id=workspace_id,
            sequence_id=sequence_id,
            purpose=Purpose.SEND,
            now=now,
        )
        mine = sa.select(o.c.enrollment_id).where(o.c.id.in_(staged))
        for check, status in ((OptedOut(), "opted_out"), (Bounced(), "bounced")):
            predicate = check.blocks_sql(env, where)
            assert predicate is not None
            end_enrollments(
                db,
                workspace_id=workspace_id,
                targets=sa.select(e.c.id.label("enrollment_id"))
                .select_from(
                    e.join(p, p.c.id == e.c.person_id).outerjoin(c, c.c.id == p.c.company_id)
                )
                .where(e.c.sequence_id == sequence_id, e.c.id.in_(mine), predicate),
                status=status,
                reason=f"{check.name.replace('_', ' ')} (checked when the email was claimed)",
                rule=check.name,
                actor=ACTOR,
                now=now,
            )
        if where.sequence.ruleset.exclusions_enabled:
            recheck_people(
                db,
                workspace_id=workspace_id,
                people=sa.select(e.c.person_id).where(
                    e.c.sequence_id == sequence_id, e.c.id.in_(mine)
                ),
                actor=ACTOR,
                now=now,
                cause="checked when the email was claimed",
            )
    return _cancelled_count(db) - before


def _cancelled_count(db: Connection) -> int:
    o = t.outbound_emails
    return int(
        db.scalar(
            sa.select(sa.func.count()).where(
                o.c.id.in_(sa.select(claimed_emails.c.id)), o.c.status == "cancelled"
            )
        )
        or 0
    )


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
        )
        for r in rows
    ]
