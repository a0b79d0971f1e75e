"""The unsubscribe link's use-case (R3): who a token stands for, and opting them out.

Shared by the hosted page and anything else that receives a token (a mailto
unsubscribe, the CLI). A token names one person of one workspace and the
address it was sent to; it acts only on that person, and only while that
person still has that address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, NotFound
from optout.mail.tokens import Claims
from optout.services.suppression import optouts


class AddressChanged(Conflict):
    """The person's address is no longer the one the link was sent to."""

    code = "address_changed"


@dataclass(frozen=True)
class Recipient:
    workspace_id: int
    workspace_name: str
    person_id: int
    email: str
    opted_out: bool


def recipient(db: Connection, *, claims: Claims) -> Recipient:
    """The person a token stands for; NotFound if gone, AddressChanged if re-addressed."""
    p, w, s = t.people, t.workspaces, t.suppressions
    row = db.execute(
        sa.select(w.c.name, p.c.email)
        .join(p, p.c.workspace_id == w.c.id)
        .where(w.c.id == claims.workspace_id, p.c.id == claims.person_id)
    ).first()
    if row is None:
        raise NotFound("the person this link was sent to is no longer on file")
    name, email = row
    if not claims.matches(email):
        raise AddressChanged(
            "this link was sent to an address that is no longer on file for this person"
        )
    opted_out = db.scalar(
        sa.select(s.c.id).where(
            s.c.workspace_id == claims.workspace_id, s.c.email == email, s.c.kind == "opt_out"
        )
    )
    return Recipient(claims.workspace_id, name, claims.person_id, email, opted_out is not None)


def unsubscribe(db: Connection, *, claims: Claims, now: datetime, evidence: str = "") -> Recipient:
    """Opt the token's person out of all email (the CRM learns it too); idempotent."""
    person = recipient(db, claims=claims)
    optouts.opt_out(
        db,
        workspace_id=person.workspace_id,
        email=person.email,
        actor="recipient",
        channel="unsubscribe_link",
        reason="one-click unsubscribe",
        evidence=evidence,
        now=now,
    )
    return Recipient(
        person.workspace_id, person.workspace_name, person.person_id, person.email, True
    )
