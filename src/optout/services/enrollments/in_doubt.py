"""Emails held in doubt: the worker stopped between handing a message to the mail server
and recording the server's answer, so it may or may not have been delivered.

Such an email is neither sent again blindly nor dropped: it waits here until a person
releases it (it is sent again with the same Message-ID, which lets a receiving server
drop a duplicate) or cancels it (it is not sent; its enrollment ends). Each decision is
recorded with who made it and when (R35). A workspace may choose to release them
automatically after some minutes instead (`in_doubt_resend_minutes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound
from optout.services import events
from optout.services.enforcement import end_enrollments
from optout.services.staging import claimed_emails, stage

MAX_RESEND_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class InDoubtEmail:
    email_id: int
    person_id: int
    to: str
    sequence_id: int
    sequence: str
    step: int
    subject: str
    message_id: str | None
    reason: str
    handed_over_at: datetime | None
    in_doubt_at: datetime | None


def count(db: Connection, *, workspace_id: int) -> int:
    o = t.outbound_emails
    return int(
        db.scalar(
            sa.select(sa.func.count())
            .select_from(o)
            .where(o.c.workspace_id == workspace_id, o.c.status == "in_doubt")
        )
        or 0
    )


def listing(db: Connection, *, workspace_id: int, limit: int = 500) -> list[InDoubtEmail]:
    """The emails in doubt, oldest first."""
    o, e, s, st, p = (
        t.outbound_emails,
        t.enrollments,
        t.sequences,
        t.sequence_steps,
        t.people,
    )
    rows = db.execute(
        sa.select(
            o.c.id,
            o.c.person_id,
            p.c.email,
            e.c.sequence_id,
            s.c.name,
            st.c.position,
            st.c.subject,
            o.c.message_id,
            o.c.last_error,
            o.c.handed_over_at,
            o.c.in_doubt_at,
        )
        .join(e, e.c.id == o.c.enrollment_id)
        .join(s, s.c.id == e.c.sequence_id)
        .join(st, st.c.id == o.c.step_id)
        .join(p, p.c.id == o.c.person_id)
        .where(o.c.workspace_id == workspace_id, o.c.status == "in_doubt")
        .order_by(o.c.in_doubt_at, o.c.id)
        .limit(limit)
    ).all()
    return [
        InDoubtEmail(
            email_id=r.id,
            person_id=r.person_id,
            to=r.email,
            sequence_id=r.sequence_id,
            sequence=r.name,
            step=r.position,
            subject=r.subject,
            message_id=r.message_id,
            reason=r.last_error or "",
            handed_over_at=r.handed_over_at,
            in_doubt_at=r.in_doubt_at,
        )
        for r in rows
    ]


def _held(db: Connection, *, workspace_id: int, email_id: int) -> Any:
    o, e = t.outbound_emails, t.enrollments
    row = db.execute(
        sa.select(o.c.enrollment_id, o.c.status, e.c.status.label("enrollment_status"))
        .join(e, e.c.id == o.c.enrollment_id)
        .where(o.c.id == email_id, o.c.workspace_id == workspace_id)
        .with_for_update(of=o)
    ).first()
    if row is None:
        raise NotFound(f"no email {email_id} in this workspace")
    if row.status != "in_doubt":
        raise Conflict(f"email {email_id} is not in doubt (it is {row.status})")
    return row


def release(db: Connection, *, workspace_id: int, email_id: int, actor: str, now: datetime) -> None:
    """Send the email again (same Message-ID), after the usual send-time checks."""
    row = _held(db, workspace_id=workspace_id, email_id=email_id)
    if row.enrollment_status not in t.ACTIVE_STATUSES:
        raise InvalidInput(
            f"email {email_id} cannot be sent again: its enrollment has ended "
            f"({row.enrollment_status.replace('_', ' ')}); cancel it instead"
        )
    release_where(
        db,
        workspace_id=workspace_id,
        where=t.outbound_emails.c.id == email_id,
        actor=actor,
        note="sent again by a person",
        now=now,
    )


def release_where(
    db: Connection,
    *,
    workspace_id: int,
    where: sa.ColumnElement[bool],
    actor: str,
    note: str,
    now: datetime,
) -> int:
    """Queue the in-doubt emails selected by `where` (of active enrollments) to be sent
    now, keeping their Message-ID; one event each. Returns how many."""
    o, e = t.outbound_emails, t.enrollments
    released = stage(
        db,
        claimed_emails,
        sa.select(o.c.id)
        .join(e, e.c.id == o.c.enrollment_id)
        .where(
            where,
            o.c.workspace_id == workspace_id,
            o.c.status == "in_doubt",
            e.c.status.in_(t.ACTIVE_STATUSES),
        ),
    )
    if not released:
        return 0
    mine = o.c.id.in_(sa.select(claimed_emails.c.id))
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind="email_released",
        actor=actor,
        now=now,
        detail={"note": note},
        select=sa.select(o.c.id.label("email_id"), o.c.enrollment_id, o.c.person_id).where(mine),
    )
    db.execute(
        o.update()
        .where(mine)
        .values(
            status="queued",
            due_at=now,
            handed_over_at=None,
            accepted_at=None,
            smtp_reply=None,
            in_doubt_at=None,
            last_error=sa.func.coalesce(o.c.last_error, "") + f" ({note})",
        )
    )
    return released


def cancel(db: Connection, *, workspace_id: int, email_id: int, actor: str, now: datetime) -> None:
    """Do not send the email again; its enrollment ends (it has no next email to wait for)."""
    row = _held(db, workspace_id=workspace_id, email_id=email_id)
    o = t.outbound_emails
    reason = f"cancelled by {actor} while in doubt (it may or may not have been delivered)"
    events.record(
        db,
        workspace_id=workspace_id,
        kind="email_cancelled",
        actor=actor,
        now=now,
        rule="in_doubt_cancelled",
        detail={"reason": reason},
        email_id=email_id,
        enrollment_id=row.enrollment_id,
    )
    db.execute(
        o.update()
        .where(o.c.id == email_id)
        .values(status="cancelled", cancel_reason=reason, in_doubt_at=None)
    )
    end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=sa.select(sa.literal(row.enrollment_id, sa.Integer).label("enrollment_id")),
        status="unenrolled",
        reason=reason,
        rule="in_doubt_cancelled",
        actor=actor,
        now=now,
    )


def resend_minutes(db: Connection, *, workspace_id: int) -> int | None:
    return db.scalar(
        sa.select(t.workspaces.c.in_doubt_resend_minutes).where(t.workspaces.c.id == workspace_id)
    )


def set_resend_minutes(
    db: Connection, *, workspace_id: int, minutes: int | None, actor: str, now: datetime
) -> None:
    """Hold in-doubt emails for a person (None), or send them again after `minutes`."""
    if minutes is not None and not 1 <= minutes <= MAX_RESEND_MINUTES:
        raise InvalidInput(
            f"{minutes:,} is not a number of minutes before sending again: give 1 to "
            f"{MAX_RESEND_MINUTES:,}",
            value=str(minutes),
        ).at("minutes", "Minutes before sending again")
    db.execute(
        t.workspaces.update()
        .where(t.workspaces.c.id == workspace_id)
        .values(in_doubt_resend_minutes=minutes)
    )
    events.record(
        db,
        workspace_id=workspace_id,
        kind="in_doubt_policy_changed",
        actor=actor,
        now=now,
        detail={"resend_after_minutes": minutes},
    )
