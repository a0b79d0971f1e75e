"""Opt-outs read from a CRM (R1, R2, R33), set-based: every staged address the CRM marks
opted out and that is not suppressed yet gets the suppression, a ledger line (channel
`crm`), an event per person holding it and the end of their active enrollments, as
`optouts.opt_out` does for one address. A CRM saying "not opted out" changes nothing:
only `optouts.clear_opt_out`, an explicit act with a reason, lifts an opt-out.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services import events
from optout.services.enforcement import Removal, end_enrollments

_md = sa.MetaData()

staged_opt_outs = sa.Table(
    "optout_crm_opt_outs",
    _md,
    sa.Column("email", sa.String(320), primary_key=True),
    prefixes=["TEMPORARY"],
)


def suppress_staged(
    db: Connection,
    *,
    workspace_id: int,
    staged: sa.Table,
    crm: str,
    actor: str,
    now: datetime,
) -> tuple[int, Removal]:
    """Suppress the addresses of `staged` (columns `email`, `opt_out`) marked opted out
    that are not yet; returns how many, and the enrollments ended."""
    s, o, sup, p, e = staged, staged_opt_outs, t.suppressions, t.people, t.enrollments
    already = sa.exists().where(
        sup.c.workspace_id == workspace_id, sup.c.email == s.c.email, sup.c.kind == "opt_out"
    )
    o.create(db, checkfirst=True)
    db.execute(o.delete())
    db.execute(
        o.insert().from_select(
            ["email"], sa.select(s.c.email).where(s.c.opt_out.is_(True), ~already)
        )
    )
    count = int(db.scalar(sa.select(sa.func.count()).select_from(o)) or 0)
    if count == 0:
        return 0, Removal(0, 0)
    reason = f"opted out in {crm}"
    constants = (
        sa.literal(workspace_id, sa.Integer),
        o.c.email,
        sa.literal("opt_out", sa.String),
        sa.literal(now, sa.DateTime),
        sa.literal(actor, sa.String),
        sa.literal("crm", sa.String),
        sa.literal(reason, sa.Text),
    )
    names = ["workspace_id", "email", "kind"]
    db.execute(
        sup.insert().from_select(
            [*names, "since", "actor", "channel", "reason"], sa.select(*constants)
        )
    )
    db.execute(
        t.suppression_ledger.insert().from_select(
            [*names, "at", "actor", "channel", "reason", "action", "evidence"],
            sa.select(
                *constants,
                sa.literal("added", sa.String),
                sa.literal(f"{crm} record says opted out", sa.Text),
            ),
        )
    )
    holders = sa.select(p.c.id.label("person_id")).where(
        p.c.workspace_id == workspace_id, p.c.email.in_(sa.select(o.c.email))
    )
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind="opted_out",
        actor=actor,
        now=now,
        rule="opt_out",
        detail={"channel": "crm", "reason": reason},
        select=holders,
    )
    removal = end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=sa.select(e.c.id.label("enrollment_id")).where(
            e.c.person_id.in_(holders), e.c.status.in_(t.ACTIVE_STATUSES)
        ),
        status="opted_out",
        reason="opted out via crm",
        rule="opt_out",
        actor=actor,
        now=now,
    )
    return count, removal
