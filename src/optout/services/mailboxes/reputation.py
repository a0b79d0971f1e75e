"""The reputation breaker (R40): a mailbox whose recent sends bounce or draw complaints
too often stops sending before its domain is blocked.

Over a mailbox's last `WINDOW` sends (emails handed to the mail server since it was
last paused), a send counts as bounced or complained when its recipient's address was
suppressed as a hard bounce or a complaint after it went. Above the workspace's
`bounce_pause_rate` or `complaint_pause_rate` the mailbox pauses with the reason and
the figures; above `domain_complaint_pause_rate` over the last sends of its whole
sending domain, every mailbox of that domain pauses. Paused mailboxes send nothing;
their emails wait in their place until an admin resumes them.

It runs where a bounce or a complaint is recorded (`optouts`), for the mailboxes that
sent to that address: one windowed query over their last sends, whatever their number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services import events

WINDOW = 200  # the last sends a rate is taken over
MIN_SENDS = 20  # fewer sends than this say too little to pause on
ACTOR = "reputation breaker"


@dataclass(frozen=True)
class Figures:
    sends: int
    bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.sends if self.sends else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sends if self.sends else 0.0


@dataclass(frozen=True)
class Tripped:
    address: str
    reason: str
    figures: Figures


def after_suppression(
    db: Connection, *, workspace_id: int, addresses: Sequence[str], now: datetime
) -> list[Tripped]:
    """Check the active mailboxes that sent to `addresses` (just suppressed as bounces or
    complaints), and their domains; pause those over the line."""
    o, p, b = t.outbound_emails, t.people, t.mailboxes
    senders = (
        sa.select(o.c.mailbox_id)
        .join(p, p.c.id == o.c.person_id)
        .where(
            p.c.workspace_id == workspace_id,
            p.c.email.in_(list(addresses)),
            o.c.mailbox_id.is_not(None),
            o.c.handed_over_at.is_not(None),
        )
        .distinct()
    )
    rows = db.execute(
        sa.select(b.c.id, b.c.address).where(
            b.c.workspace_id == workspace_id, b.c.status == "active", b.c.id.in_(senders)
        )
    ).all()
    if not rows:
        return []
    return check(db, workspace_id=workspace_id, mailbox_ids=[r.id for r in rows], now=now)


def check(
    db: Connection, *, workspace_id: int, mailbox_ids: Sequence[int], now: datetime
) -> list[Tripped]:
    """Pause whichever of these mailboxes (or their domains) crossed the workspace's lines."""
    b = t.mailboxes
    lines = lines_of(db, workspace_id=workspace_id)
    figures = _figures(db, groups={m: m for m in mailbox_ids})
    addresses = dict(
        db.execute(sa.select(b.c.id, b.c.address).where(b.c.id.in_(list(mailbox_ids)))).all()
    )
    # The sending domains of these mailboxes, over the last sends of all their mailboxes;
    # read before any pause, which starts a paused mailbox's count again.
    names = sorted({str(a).rpartition("@")[2] for a in addresses.values()})
    siblings = dict(
        db.execute(
            sa.select(b.c.id, b.c.address).where(
                b.c.workspace_id == workspace_id,
                sa.or_(*(b.c.address.like(f"%@{d}") for d in names)),
            )
        ).all()
    )
    by_domain = {m: names.index(str(a).rpartition("@")[2]) for m, a in siblings.items()}
    domain_figures = _figures(db, groups=by_domain)
    tripped: list[Tripped] = []
    for mailbox_id, seen in figures.items():
        reason = _reason(seen, lines.bounce_pause_rate, lines.complaint_pause_rate)
        if reason:
            tripped += _pause(
                db, workspace_id=workspace_id, ids=[mailbox_id], reason=reason, seen=seen, now=now
            )
    for index, seen in domain_figures.items():
        if seen.sends >= MIN_SENDS and seen.complaint_rate > lines.domain_complaint_pause_rate:
            domain = names[index]
            reason = (
                f"spam complaints on {domain} at {seen.complaint_rate:.1%} of its last "
                f"{seen.sends} sends ({seen.complaints}), above the "
                f"{lines.domain_complaint_pause_rate:.1%} line for a whole domain"
            )
            mates = [m for m, i in by_domain.items() if i == index]
            tripped += _pause(
                db, workspace_id=workspace_id, ids=mates, reason=reason, seen=seen, now=now
            )
    return tripped


def _reason(seen: Figures, bounce_line: float, complaint_line: float) -> str | None:
    if seen.sends < MIN_SENDS:
        return None
    if seen.complaint_rate > complaint_line:
        return (
            f"spam complaints at {seen.complaint_rate:.1%} of the last {seen.sends} sends "
            f"({seen.complaints}), above the {complaint_line:.1%} line"
        )
    if seen.bounce_rate > bounce_line:
        return (
            f"hard bounces at {seen.bounce_rate:.1%} of the last {seen.sends} sends "
            f"({seen.bounces}), above the {bounce_line:.1%} line"
        )
    return None


def _figures(db: Connection, *, groups: dict[int, int]) -> dict[int, Figures]:
    """Sends, bounces and complaints over the last WINDOW sends of each group of
    mailboxes (`groups`: mailbox id -> group), each mailbox's sends counted from its
    last pause on."""
    if not groups:
        return {}
    o, p, b, s = t.outbound_emails, t.people, t.mailboxes, t.suppressions
    group = sa.case(dict(groups), value=o.c.mailbox_id)

    def suppressed(kind: str) -> Any:
        return sa.case(
            (
                sa.exists().where(
                    s.c.workspace_id == o.c.workspace_id,
                    s.c.email == p.c.email,
                    s.c.kind == kind,
                    s.c.since >= o.c.handed_over_at,
                ),
                1,
            ),
            else_=0,
        )

    recent = (
        sa.select(
            group.label("g"),
            suppressed("bounce").label("bounced"),
            suppressed("complaint").label("complained"),
            sa.func.row_number()
            .over(partition_by=group, order_by=(o.c.handed_over_at.desc(), o.c.id.desc()))
            .label("rank"),
        )
        .join(p, p.c.id == o.c.person_id)
        .join(b, b.c.id == o.c.mailbox_id)
        .where(
            o.c.mailbox_id.in_(list(groups)),
            o.c.handed_over_at.is_not(None),
            sa.or_(b.c.paused_at.is_(None), o.c.handed_over_at > b.c.paused_at),
        )
        .subquery()
    )
    rows = db.execute(
        sa.select(
            recent.c.g,
            sa.func.count(),
            sa.func.sum(recent.c.bounced),
            sa.func.sum(recent.c.complained),
        )
        .where(recent.c.rank <= WINDOW)
        .group_by(recent.c.g)
    ).all()
    return {
        g: Figures(int(n), int(bounced or 0), int(complained or 0))
        for g, n, bounced, complained in rows
    }


def _pause(
    db: Connection,
    *,
    workspace_id: int,
    ids: list[int],
    reason: str,
    seen: Figures,
    now: datetime,
) -> list[Tripped]:
    b = t.mailboxes
    paused = (
        db.execute(
            b.update()
            .where(b.c.id.in_(ids), b.c.status == "active")
            .values(
                status="paused", pause_reason=reason, paused_at=now, paused_by=ACTOR, updated_at=now
            )
            .returning(b.c.address)
        )
        .scalars()
        .all()
    )
    for address in paused:
        events.record(
            db,
            workspace_id=workspace_id,
            kind="mailbox_paused",
            actor=ACTOR,
            now=now,
            rule="reputation",
            detail={
                "mailbox": address,
                "reason": reason,
                "sends": seen.sends,
                "hard_bounces": seen.bounces,
                "complaints": seen.complaints,
            },
        )
    return [Tripped(a, reason, seen) for a in paused]


@dataclass(frozen=True)
class Lines:
    """The workspace's thresholds, as shares of the last sends (0.05 is 5%)."""

    bounce_pause_rate: float
    complaint_pause_rate: float
    domain_complaint_pause_rate: float


def lines_of(db: Connection, *, workspace_id: int) -> Lines:
    w = t.workspaces
    row = db.execute(
        sa.select(
            w.c.bounce_pause_rate, w.c.complaint_pause_rate, w.c.domain_complaint_pause_rate
        ).where(w.c.id == workspace_id)
    ).one()
    return Lines(*row)


def set_lines(
    db: Connection,
    *,
    workspace_id: int,
    actor: str,
    now: datetime,
    bounce_pause_rate: float | None = None,
    complaint_pause_rate: float | None = None,
    domain_complaint_pause_rate: float | None = None,
) -> Lines:
    """Change the breaker's lines (those given); each is a share above 0 and at most 1."""
    given = {
        "bounce_pause_rate": bounce_pause_rate,
        "complaint_pause_rate": complaint_pause_rate,
        "domain_complaint_pause_rate": domain_complaint_pause_rate,
    }
    values = {k: v for k, v in given.items() if v is not None}
    for name, value in values.items():
        if not 0 < value <= 1:
            what = name.replace("_pause_rate", "").replace("_", " ")
            raise InvalidInput(
                f"the {what} line must be a share above 0 and at most 1 (0.05 is 5%), not {value}"
            )
    if values:
        before = lines_of(db, workspace_id=workspace_id)
        w = t.workspaces
        db.execute(w.update().where(w.c.id == workspace_id).values(**values))
        events.record(
            db,
            workspace_id=workspace_id,
            kind="reputation_lines_changed",
            actor=actor,
            now=now,
            detail={k: [getattr(before, k), v] for k, v in values.items()},
        )
    return lines_of(db, workspace_id=workspace_id)
