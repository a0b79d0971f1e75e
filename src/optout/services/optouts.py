"""Opt-outs and bounces: suppression by address, with a ledger (R1, R2, R7, R33).

Any member may opt a person out; who, when, why and through which channel is
kept. This is the one door for an opt-out: it queues the CRM write-back in the same
transaction for every channel but the CRM's own (R31), so callers never do.
An opt-out is sticky: only `clear_opt_out`, an explicit act with a reason, ever
lifts it; nothing a CRM or an import says does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput, NotFound
from optout.normalize import normalize_email
from optout.services import events, writebacks
from optout.services.enforcement import end_enrollments

CHANNELS = frozenset({"manual", "unsubscribe_link", "reply", "crm", "import", "api", "bounce"})


@dataclass(frozen=True)
class Suppressed:
    email: str
    new: bool  # False when the address was suppressed already
    enrollments_ended: int
    emails_cancelled: int


def opt_out(
    db: Connection,
    *,
    workspace_id: int,
    email: str,
    actor: str,
    channel: str,
    now: datetime,
    reason: str = "",
    evidence: str = "",
) -> Suppressed:
    """Opt an address out: every person with it, now and later (R1)."""
    return _suppress(
        db,
        workspace_id=workspace_id,
        email=email,
        kind="opt_out",
        status="opted_out",
        actor=actor,
        channel=channel,
        now=now,
        reason=reason,
        evidence=evidence,
    )


def bounce(
    db: Connection,
    *,
    workspace_id: int,
    email: str,
    actor: str,
    now: datetime,
    reason: str = "",
    evidence: str = "",
) -> Suppressed:
    """Mark an address hard-bounced: it is never sent to again (R7)."""
    return _suppress(
        db,
        workspace_id=workspace_id,
        email=email,
        kind="bounce",
        status="bounced",
        actor=actor,
        channel="bounce",
        now=now,
        reason=reason,
        evidence=evidence,
    )


def _suppress(
    db: Connection,
    *,
    workspace_id: int,
    email: str,
    kind: str,
    status: str,
    actor: str,
    channel: str,
    now: datetime,
    reason: str,
    evidence: str,
) -> Suppressed:
    if channel not in CHANNELS:
        raise InvalidInput(f"unknown channel {channel!r}; use one of {', '.join(sorted(CHANNELS))}")
    if not actor.strip():
        raise InvalidInput("say who does this (actor)")
    address = normalize_email(email).address
    s = t.suppressions
    exists = db.scalar(
        sa.select(s.c.id).where(
            s.c.workspace_id == workspace_id, s.c.email == address, s.c.kind == kind
        )
    )
    if exists is None:
        db.execute(
            s.insert().values(
                workspace_id=workspace_id,
                email=address,
                kind=kind,
                since=now,
                actor=actor,
                channel=channel,
                reason=reason,
            )
        )
    db.execute(
        t.suppression_ledger.insert().values(
            workspace_id=workspace_id,
            email=address,
            kind=kind,
            action="added" if exists is None else "repeated",
            at=now,
            actor=actor,
            channel=channel,
            reason=reason,
            evidence=evidence,
        )
    )
    p, e = t.people, t.enrollments
    holders = sa.select(p.c.id.label("person_id")).where(
        p.c.workspace_id == workspace_id, p.c.email == address
    )
    if kind == "opt_out" and channel != "crm":  # the CRM learns it (R31); it told us itself
        writebacks.record_opt_out_writeback(db, workspace_id=workspace_id, email=address, now=now)
    if exists is None:
        events.record_from_select(
            db,
            workspace_id=workspace_id,
            kind="opted_out" if kind == "opt_out" else "bounced",
            actor=actor,
            now=now,
            rule=kind,
            detail={"email": address, "channel": channel, "reason": reason},
            select=holders,
        )
    removal = end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=sa.select(e.c.id.label("enrollment_id")).where(
            e.c.person_id.in_(holders), e.c.status.in_(t.ACTIVE_STATUSES)
        ),
        status=status,
        reason=f"{'opted out' if kind == 'opt_out' else 'hard bounce'} via {channel}",
        rule=kind,
        actor=actor,
        now=now,
    )
    return Suppressed(address, exists is None, removal.enrollments_ended, removal.emails_cancelled)


def clear_opt_out(
    db: Connection, *, workspace_id: int, email: str, actor: str, reason: str, now: datetime
) -> None:
    """Lift an opt-out: an explicit, audited act that needs a reason (R33)."""
    if not reason.strip():
        raise InvalidInput("clearing an opt-out needs a reason")
    address = normalize_email(email).address
    s = t.suppressions
    removed = db.execute(
        s.delete().where(
            s.c.workspace_id == workspace_id, s.c.email == address, s.c.kind == "opt_out"
        )
    ).rowcount
    if not removed:
        raise NotFound(f"{address} has not opted out")
    db.execute(
        t.suppression_ledger.insert().values(
            workspace_id=workspace_id,
            email=address,
            kind="opt_out",
            action="cleared",
            at=now,
            actor=actor,
            channel="manual",
            reason=reason,
        )
    )
    p = t.people
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind="opt_out_cleared",
        actor=actor,
        now=now,
        detail={"email": address, "reason": reason},
        select=sa.select(p.c.id.label("person_id")).where(
            p.c.workspace_id == workspace_id, p.c.email == address
        ),
    )


def ledger(db: Connection, *, workspace_id: int, email: str) -> list[dict[str, object]]:
    """Every opt-out, bounce and clearing of an address, oldest first."""
    address = normalize_email(email).address
    g = t.suppression_ledger
    rows = db.execute(
        sa.select(g)
        .where(g.c.workspace_id == workspace_id, g.c.email == address)
        .order_by(g.c.at, g.c.id)
    ).mappings()
    return [dict(r) for r in rows]
