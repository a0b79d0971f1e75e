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

from collections.abc import Sequence
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
from optout.services import events
from optout.services.enforcement import Removal, end_each
from optout.services.mailboxes import reputation
from optout.services.staging import analyzed
from optout.services.suppression import writebacks

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


@dataclass(frozen=True)
class Suppression:
    """One address to suppress, with its own reason and evidence: what `opt_out`,
    `bounce` and `complain` do for one address, and `suppress_all` for several (a batch
    of inbound mail, each for what its message said). Built by `opting_out`, `bouncing`
    and `complaining`."""

    email: str
    kind: str  # opt_out, bounce or complaint
    status: str  # the final status of the enrollments it ends
    actor: str
    channel: str
    reason: str = ""
    evidence: str = ""
    ending: str = ""  # why the enrollments ended; by default from the kind and the channel


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
    request = opting_out(email, actor=actor, channel=channel, reason=reason, evidence=evidence)
    return _one(db, workspace_id=workspace_id, request=request, now=now)


def opting_out(
    email: str, *, actor: str, channel: str, reason: str = "", evidence: str = ""
) -> Suppression:
    return Suppression(email, "opt_out", "opted_out", actor, channel, reason, evidence)


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
    request = bouncing(email, actor=actor, reason=reason, evidence=evidence)
    return _one(db, workspace_id=workspace_id, request=request, now=now)


def bouncing(email: str, *, actor: str, reason: str = "", evidence: str = "") -> Suppression:
    return Suppression(email, "bounce", "bounced", actor, "bounce", reason, evidence)


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
    learns it, in this transaction."""
    request = complaining(
        email,
        actor=actor,
        feedback_type=feedback_type,
        reporting_domain=reporting_domain,
        reason=reason,
        evidence=evidence,
    )
    return _one(db, workspace_id=workspace_id, request=request, now=now)


def complaining(
    email: str,
    *,
    actor: str,
    feedback_type: str = "abuse",
    reporting_domain: str = "",
    reason: str = "",
    evidence: str = "",
) -> Suppression:
    """`feedback_type` is the report's RFC 5965 type; a `not-spam` report suppresses
    nothing, so it is refused here."""
    kind = feedback_type.strip().lower()
    if kind == "not-spam":
        raise InvalidInput("a not-spam feedback report suppresses nothing")
    if not is_feedback_type(kind):
        raise InvalidInput(f"not a feedback type: {feedback_type!r} (e.g. abuse, fraud, other)")
    domain = normalize_domain(reporting_domain) if reporting_domain.strip() else ""
    report = ComplaintReport(kind, domain, " ".join(reason.split()))
    source = f"{kind} report" + (f" from {domain}" if domain else "")
    return Suppression(
        email,
        "complaint",
        "opted_out",
        actor,
        "complaint",
        complaint_reason(report),
        evidence,
        ending=f"spam complaint ({source})",
    )


def _one(db: Connection, *, workspace_id: int, request: Suppression, now: datetime) -> Suppressed:
    (done,) = suppress_all(db, workspace_id=workspace_id, requests=[request], now=now)
    return done


# What one act of suppression applies to, one row per address asked for, whoever asks: the
# list of `suppress_all` or the select of `opt_out_all`. `is_new` marks the row that adds
# the suppression (the first of its address and kind, when none was there); `ends` the row
# that ends the address's enrollments (the first of its address).
_suppressing = sa.Table(
    "optout_suppressing",
    sa.MetaData(),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("ending", sa.Text, nullable=False),
    sa.Column("is_new", sa.Boolean, nullable=False),
    sa.Column("ends", sa.Boolean, nullable=False),
    sa.Index("ix_optout_suppressing_address", "email", "kind", "seq"),
    prefixes=["TEMPORARY"],
)
_STAGED = ("email", "kind", "status", "actor", "channel", "reason", "evidence", "ending")


def suppress_all(
    db: Connection, *, workspace_id: int, requests: Sequence[Suppression], now: datetime
) -> list[Suppressed]:
    """Suppress each address asked for, in order, in a few statements whatever their
    number: the suppression (unless the address has it already), a ledger line, the CRM
    write-back of an opt-out or a complaint (but for the CRM's own channel, R31), an event
    per person holding a new suppression, the end of their active enrollments with the
    cancelling of their queued emails, and the sending side's reputation after a bounce or
    a complaint (R40). An address asked for twice is suppressed once; the second request
    is a `repeated` ledger line. Returns, per request, what it did."""
    rows = [_checked(request) for request in requests]
    if not rows:
        return []
    s = _suppressing
    s.create(db, checkfirst=True)
    db.execute(s.delete())
    staged = [{"seq": i, "is_new": False, "ends": False, **row} for i, row in enumerate(rows)]
    db.execute(s.insert(), staged)
    analyzed(db, s)
    _mark(db, workspace_id=workspace_id)
    counts = _counted(db, workspace_id=workspace_id)
    _apply(db, workspace_id=workspace_id, now=now)
    done = db.execute(sa.select(s.c.seq, s.c.email, s.c.is_new).order_by(s.c.seq)).all()
    return [Suppressed(str(email), bool(new), *counts.get(seq, (0, 0))) for seq, email, new in done]


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
    opted out yet, set-based, whatever their number: what `suppress_all` does for each.
    Addresses opted out already are left alone, so the same file or sync page twice adds
    nothing. Returns how many addresses were opted out, and the enrollments ended."""
    _check_who(actor=actor, channel=channel)
    s, sup = _suppressing, t.suppressions
    chosen = emails.subquery()
    address = next(iter(chosen.c))
    already = sa.exists().where(
        sup.c.workspace_id == workspace_id, sup.c.email == address, sup.c.kind == "opt_out"
    )
    constants = {
        "kind": "opt_out",
        "status": "opted_out",
        "actor": actor,
        "channel": channel,
        "reason": reason,
        "evidence": evidence,
        "ending": _ending("opt_out", channel),
        "is_new": True,  # distinct addresses, none opted out yet
        "ends": True,
    }
    s.create(db, checkfirst=True)
    db.execute(s.delete())
    db.execute(
        s.insert().from_select(
            ["email", *constants],
            sa.select(address, *(sa.literal(v, s.c[k].type) for k, v in constants.items()))
            .where(~already)
            .distinct(),
        )
    )
    count = int(db.scalar(sa.select(sa.func.count()).select_from(s)) or 0)
    if count == 0:
        return 0, Removal(0, 0)
    analyzed(db, s)
    return count, _apply(db, workspace_id=workspace_id, now=now)


def _checked(request: Suppression) -> dict[str, str]:
    _check_who(actor=request.actor, channel=request.channel)
    if request.kind not in _EVENT:
        raise ValueError(f"not a kind of suppression: {request.kind!r}")
    row = {name: getattr(request, name) for name in _STAGED}
    row["email"] = normalize_email(request.email).address
    row["ending"] = request.ending or _ending(request.kind, request.channel)
    return row


def _check_who(*, actor: str, channel: str) -> None:
    if channel not in CHANNELS:
        raise InvalidInput(f"unknown channel {channel!r}; use one of {', '.join(sorted(CHANNELS))}")
    if not actor.strip():
        raise InvalidInput("say who does this (actor)")


def _ending(kind: str, channel: str) -> str:
    done = "opted out" if kind == "opt_out" else "hard bounce"
    return f"{done} via {channel_words(channel)}"


def _mark(db: Connection, *, workspace_id: int) -> None:
    """Which staged row adds its suppression (the first of its address and kind, when the
    address has none yet) and which ends the address's enrollments (its first)."""
    s, sup = _suppressing, t.suppressions
    earlier = s.alias("earlier")
    existing = sa.exists().where(
        sup.c.workspace_id == workspace_id, sup.c.email == s.c.email, sup.c.kind == s.c.kind
    )
    first_of_kind = sa.select(sa.func.min(earlier.c.seq)).where(
        earlier.c.email == s.c.email, earlier.c.kind == s.c.kind
    )
    first_of_address = sa.select(sa.func.min(earlier.c.seq)).where(earlier.c.email == s.c.email)
    db.execute(
        s.update().values(
            is_new=sa.and_(~existing, s.c.seq == first_of_kind.scalar_subquery()),
            ends=s.c.seq == first_of_address.scalar_subquery(),
        )
    )


def _counted(db: Connection, *, workspace_id: int) -> dict[int, tuple[int, int]]:
    """Per staged row that ends its address's enrollments: how many are active, and their
    queued emails, before they end."""
    s, p, e, o = _suppressing, t.people, t.enrollments, t.outbound_emails
    rows = db.execute(
        sa.select(s.c.seq, sa.func.count(sa.distinct(e.c.id)), sa.func.count(o.c.id))
        .join(p, sa.and_(p.c.workspace_id == workspace_id, p.c.email == s.c.email))
        .join(e, sa.and_(e.c.person_id == p.c.id, e.c.status.in_(t.ACTIVE_STATUSES)))
        .outerjoin(o, sa.and_(o.c.enrollment_id == e.c.id, o.c.status == "queued"))
        .where(s.c.ends)
        .group_by(s.c.seq)
    ).all()
    return {int(seq): (int(ended), int(cancelled)) for seq, ended, cancelled in rows}


def _apply(db: Connection, *, workspace_id: int, now: datetime) -> Removal:
    """Apply the staged rows, marked: the suppressions, the ledger, the CRM write-backs,
    the events, the end of the holders' enrollments and the senders' reputation."""
    s, sup, p = _suppressing, t.suppressions, t.people
    at = sa.literal(now, sa.DateTime)
    db.execute(
        sup.insert().from_select(
            ["workspace_id", "email", "kind", "since", "actor", "channel", "reason"],
            sa.select(
                sa.literal(workspace_id, sa.Integer),
                s.c.email,
                s.c.kind,
                at,
                s.c.actor,
                s.c.channel,
                s.c.reason,
            ).where(s.c.is_new),
        )
    )
    db.execute(
        t.suppression_ledger.insert().from_select(
            [
                "workspace_id",
                "email",
                "kind",
                "action",
                "at",
                "actor",
                "channel",
                "reason",
                "evidence",
            ],
            sa.select(
                sa.literal(workspace_id, sa.Integer),
                s.c.email,
                s.c.kind,
                sa.case((s.c.is_new, "added"), else_="repeated"),
                at,
                s.c.actor,
                s.c.channel,
                s.c.reason,
                s.c.evidence,
            ).order_by(s.c.seq),
        )
    )
    # The CRM learns it (R31), but not from its own channel: it told us itself.
    writebacks.record_opt_out_writebacks_from(
        db,
        workspace_id=workspace_id,
        emails=sa.select(s.c.email).where(s.c.kind.in_(_WRITTEN_BACK), s.c.channel != "crm"),
        now=now,
    )
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        now=now,
        select=sa.select(
            p.c.id.label("person_id"),
            sa.case(*((s.c.kind == kind, name) for kind, name in _EVENT.items())).label("kind"),
            s.c.actor.label("actor"),
            s.c.kind.label("rule"),
            events.detail_object(db, email=s.c.email, channel=s.c.channel, reason=s.c.reason),
        )
        .join(p, sa.and_(p.c.workspace_id == workspace_id, p.c.email == s.c.email))
        .where(s.c.is_new)
        .order_by(s.c.seq, p.c.id),
    )
    e = t.enrollments
    # Each address's first request ends its holders' enrollments, with its own status,
    # reason, rule and actor: all of them in one pass.
    total = end_each(
        db,
        workspace_id=workspace_id,
        targets=sa.select(
            e.c.id.label("enrollment_id"),
            s.c.status.label("status"),
            s.c.ending.label("reason"),
            s.c.kind.label("rule"),
            s.c.actor.label("actor"),
            s.c.seq.label("rank"),
        )
        .join(p, sa.and_(p.c.workspace_id == workspace_id, p.c.email == s.c.email))
        .join(e, sa.and_(e.c.person_id == p.c.id, e.c.status.in_(t.ACTIVE_STATUSES)))
        .where(s.c.ends),
        now=now,
    )
    scored = db.scalars(
        sa.select(s.c.email).where(s.c.is_new, s.c.kind.in_(("bounce", "complaint")))
    ).all()
    if scored:  # the sender's reputation (R40)
        reputation.after_suppression(db, workspace_id=workspace_id, addresses=scored, now=now)
    return total


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
