"""Opt-outs, bounces and spam complaints: suppression by address, with a ledger (R1, R2,
R7, R33, R36).

Any member may opt a person out; who, when, why and through which channel is
kept. This is the one door for an opt-out or a complaint: it queues the CRM write-back
in the same transaction for every channel but the CRM's own (R31), so callers never do.
Opt-outs and complaints are sticky: only `clear_opt_out`, an explicit act with a reason,
ever lifts one; nothing a CRM or an import says does.

A complaint's report (feedback type, reporting domain) is kept in its suppression's
`reason`, in the form `optout.eligibility.complaints` writes and explain reads back; the
ledger line carries the same reason and the caller's evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.audit_words import channel_words
from optout.db import tables as t
from optout.eligibility.complaints import ComplaintReport, complaint_reason, is_feedback_type
from optout.errors import InvalidInput, NotFound
from optout.normalize import normalize_domain, normalize_email
from optout.services import events, reputation, writebacks
from optout.services.enforcement import Removal, end_enrollments
from optout.services.staging import stage

CHANNELS = frozenset(
    {"manual", "unsubscribe_link", "reply", "crm", "import", "api", "bounce", "complaint"}
)
# The kinds an audited act may clear (R33); a hard bounce stays.
CLEARABLE = ("opt_out", "complaint")
_EVENT = {"opt_out": "opted_out", "bounce": "bounced", "complaint": "complained"}
# A complaint writes back as an opt-out does (R31, R36); a bounce tells the CRM nothing.
_WRITTEN_BACK = frozenset({"opt_out", "complaint"})


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


def complain(
    db: Connection,
    *,
    workspace_id: int,
    email: str,
    actor: str,
    now: datetime,
    feedback_type: str = "abuse",
    reporting_domain: str = "",
    reason: str = "",
    evidence: str = "",
) -> Suppressed:
    """Suppress an address that reported our email as spam (R36): like an opt-out, its
    active enrollments end (status `opted_out`), queued emails are cancelled and the CRM
    learns it, in this transaction. `feedback_type` is the report's RFC 5965 type; a
    `not-spam` report suppresses nothing, so it is refused here."""
    kind = feedback_type.strip().lower()
    if kind == "not-spam":
        raise InvalidInput("a not-spam feedback report suppresses nothing")
    if not is_feedback_type(kind):
        raise InvalidInput(f"not a feedback type: {feedback_type!r} (e.g. abuse, fraud, other)")
    domain = normalize_domain(reporting_domain) if reporting_domain.strip() else ""
    report = ComplaintReport(kind, domain, " ".join(reason.split()))
    source = f"{kind} report" + (f" from {domain}" if domain else "")
    return _suppress(
        db,
        workspace_id=workspace_id,
        email=email,
        kind="complaint",
        status="opted_out",
        actor=actor,
        channel="complaint",
        now=now,
        reason=complaint_reason(report),
        evidence=evidence,
        ending=f"spam complaint ({source})",
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
    ending: str = "",
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
    p = t.people
    holders = sa.select(p.c.id.label("person_id")).where(
        p.c.workspace_id == workspace_id, p.c.email == address
    )
    if kind in _WRITTEN_BACK and channel != "crm":  # the CRM learns it (R31); it told us itself
        writebacks.record_opt_out_writeback(db, workspace_id=workspace_id, email=address, now=now)
    if exists is None:
        events.record_from_select(
            db,
            workspace_id=workspace_id,
            kind=_EVENT[kind],
            actor=actor,
            now=now,
            rule=kind,
            detail={"email": address, "channel": channel, "reason": reason},
            select=holders,
        )
    removal = _end_holders(
        db,
        workspace_id=workspace_id,
        holders=holders,
        status=status,
        reason=ending
        or f"{'opted out' if kind == 'opt_out' else 'hard bounce'} via {channel_words(channel)}",
        rule=kind,
        actor=actor,
        now=now,
    )
    if kind in ("bounce", "complaint") and exists is None:  # the sender's reputation (R40)
        reputation.after_suppression(db, workspace_id=workspace_id, address=address, now=now)
    return Suppressed(address, exists is None, removal.enrollments_ended, removal.emails_cancelled)


_opting_out = sa.Table(
    "optout_opting_out",
    sa.MetaData(),
    sa.Column("email", sa.String(320), primary_key=True),
    prefixes=["TEMPORARY"],
)


def opt_out_all(
    db: Connection,
    *,
    workspace_id: int,
    emails: sa.Select[Any],
    actor: str,
    channel: str,
    now: datetime,
    reason: str,
    evidence: str = "",
) -> tuple[int, Removal]:
    """`opt_out` for every normalized address `emails` selects (one column) that is not
    opted out yet, set-based, whatever their number: the suppression, a ledger line, the
    CRM write-back (but for the CRM's own channel, R31), an event per person holding the
    address and the end of their active enrollments (R1, R2). Addresses opted out already
    are left alone, so the same file or sync page twice adds nothing. Returns how many
    addresses were opted out, and the enrollments ended."""
    if channel not in CHANNELS:
        raise InvalidInput(f"unknown channel {channel!r}; use one of {', '.join(sorted(CHANNELS))}")
    o, sup, p = _opting_out, t.suppressions, t.people
    chosen = emails.subquery()
    address = next(iter(chosen.c))
    already = sa.exists().where(
        sup.c.workspace_id == workspace_id, sup.c.email == address, sup.c.kind == "opt_out"
    )
    count = stage(db, o, sa.select(address.label("email")).where(~already).distinct())
    if count == 0:
        return 0, Removal(0, 0)
    constants = (
        sa.literal(workspace_id, sa.Integer),
        o.c.email,
        sa.literal("opt_out", sa.String),
        sa.literal(now, sa.DateTime),
        sa.literal(actor, sa.String),
        sa.literal(channel, sa.String),
        sa.literal(reason, sa.Text),
    )
    names = ["workspace_id", "email", "kind", "since", "actor", "channel", "reason"]
    db.execute(sup.insert().from_select(names, sa.select(*constants)))
    db.execute(
        t.suppression_ledger.insert().from_select(
            [
                "workspace_id",
                "email",
                "kind",
                "at",
                "actor",
                "channel",
                "reason",
                "action",
                "evidence",
            ],
            sa.select(*constants, sa.literal("added", sa.String), sa.literal(evidence, sa.Text)),
        )
    )
    if channel != "crm":  # the CRM learns it (R31); it told us itself
        writebacks.record_opt_out_writebacks_from(
            db, workspace_id=workspace_id, emails=sa.select(o.c.email), now=now
        )
    holders = sa.select(p.c.id.label("person_id")).where(
        p.c.workspace_id == workspace_id, p.c.email.in_(sa.select(o.c.email))
    )
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind=_EVENT["opt_out"],
        actor=actor,
        now=now,
        rule="opt_out",
        detail={"channel": channel, "reason": reason},
        select=holders,
    )
    removal = _end_holders(
        db,
        workspace_id=workspace_id,
        holders=holders,
        status="opted_out",
        reason=f"opted out via {channel}",
        rule="opt_out",
        actor=actor,
        now=now,
    )
    return count, removal


def _end_holders(
    db: Connection,
    *,
    workspace_id: int,
    holders: sa.Select[Any],
    status: str,
    reason: str,
    rule: str,
    actor: str,
    now: datetime,
) -> Removal:
    """End the active enrollments of the people `holders` selects (`person_id`)."""
    e = t.enrollments
    return end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=sa.select(e.c.id.label("enrollment_id")).where(
            e.c.person_id.in_(holders), e.c.status.in_(t.ACTIVE_STATUSES)
        ),
        status=status,
        reason=reason,
        rule=rule,
        actor=actor,
        now=now,
    )


def clear_opt_out(
    db: Connection,
    *,
    workspace_id: int,
    email: str,
    actor: str,
    reason: str,
    now: datetime,
    kind: str = "opt_out",
) -> None:
    """Lift an opt-out, or with `kind="complaint"` a spam complaint: an explicit, audited
    act that needs a reason (R33, R36). Each kind is lifted on its own: clearing a
    complaint leaves an opt-out of the same address in place, and the other way round."""
    if kind not in CLEARABLE:
        raise InvalidInput(f"only an opt-out or a spam complaint can be cleared, not {kind!r}")
    what = "an opt-out" if kind == "opt_out" else "a spam complaint"
    if not reason.strip():
        raise InvalidInput(f"clearing {what} needs a reason")
    address = normalize_email(email).address
    s = t.suppressions
    removed = db.execute(
        s.delete().where(s.c.workspace_id == workspace_id, s.c.email == address, s.c.kind == kind)
    ).rowcount
    if not removed:
        missing = "has not opted out" if what == "an opt-out" else "has no spam complaint to clear"
        raise NotFound(f"{address} {missing}")
    db.execute(
        t.suppression_ledger.insert().values(
            workspace_id=workspace_id,
            email=address,
            kind=kind,
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
        kind="opt_out_cleared" if kind == "opt_out" else "complaint_cleared",
        actor=actor,
        now=now,
        detail={"email": address, "reason": reason},
        select=sa.select(p.c.id.label("person_id")).where(
            p.c.workspace_id == workspace_id, p.c.email == address
        ),
    )


def ledger(db: Connection, *, workspace_id: int, email: str) -> list[dict[str, object]]:
    """Every opt-out, bounce, spam complaint and clearing of an address, oldest first."""
    address = normalize_email(email).address
    g = t.suppression_ledger
    rows = db.execute(
        sa.select(g)
        .where(g.c.workspace_id == workspace_id, g.c.email == address)
        .order_by(g.c.at, g.c.id)
    ).mappings()
    return [dict(r) for r in rows]
