"""Invitations: how someone who is not a member of a workspace becomes one.

An admin cannot make an existing user of another workspace a member of theirs: that
user's consent is needed. The admin invites an address instead (`invite`); the user it
belongs to finds the invitation after signing in and accepts or declines it. The admin's
answer is the same whether the address has an account or not, and says nothing about
its owner (no name, no other workspace) until they accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput, NotFound
from optout.normalize import normalize_email
from optout.services import events
from optout.services.access import accounts
from optout.services.access.accounts import Principal, Role

PENDING, ACCEPTED, DECLINED = "pending", "accepted", "declined"


@dataclass(frozen=True)
class Invitation:
    """An invitation as the inviting workspace sees it."""

    id: int
    email: str
    role: Role
    status: str
    invited_by: str
    created_at: datetime


@dataclass(frozen=True)
class Received:
    """An invitation as the invited user sees it."""

    id: int
    workspace_slug: str
    workspace_name: str
    role: Role
    invited_by: str
    created_at: datetime


def invite(
    db: Connection, *, principal: Principal, email: str, role: Role | str, now: datetime
) -> Invitation:
    """Invite `email` into the principal's workspace with `role` (again: the role and date
    are renewed, pending). Nothing is read about an account at that address."""
    principal.require(Role.ADMIN)
    level = _role(role)
    address = normalize_email(email).address
    i = t.invitations
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    values = {
        "role": level.value,
        "status": PENDING,
        "invited_by": principal.actor,
        "created_at": now,
        "answered_at": None,
    }
    db.execute(
        dialect.insert(i)
        .values(workspace_id=principal.workspace_id, email=address, **values)
        .on_conflict_do_update(index_elements=[i.c.workspace_id, i.c.email], set_=values)
    )
    events.record(
        db,
        workspace_id=principal.workspace_id,
        kind="member_invited",
        actor=principal.actor,
        now=now,
        detail={"email": address, "role": level.value},
    )
    row = db.execute(
        sa.select(i).where(i.c.workspace_id == principal.workspace_id, i.c.email == address)
    ).one()
    return _invitation(row)


def pending(db: Connection, *, principal: Principal) -> list[Invitation]:
    """The workspace's invitations not answered yet (admin)."""
    principal.require(Role.ADMIN)
    i = t.invitations
    rows = db.execute(
        sa.select(i)
        .where(i.c.workspace_id == principal.workspace_id, i.c.status == PENDING)
        .order_by(i.c.created_at, i.c.id)
    )
    return [_invitation(row) for row in rows]


def received(db: Connection, *, user_id: int) -> list[Received]:
    """The invitations waiting for the user `user_id` (by their address), in workspaces
    they are not a member of yet."""
    i, w, m = t.invitations, t.workspaces, t.memberships
    email = _email_of(db, user_id)
    rows = db.execute(
        sa.select(i.c.id, w.c.slug, w.c.name, i.c.role, i.c.invited_by, i.c.created_at)
        .join(w, w.c.id == i.c.workspace_id)
        .where(
            i.c.email == email,
            i.c.status == PENDING,
            ~sa.exists().where(m.c.workspace_id == i.c.workspace_id, m.c.user_id == user_id),
        )
        .order_by(i.c.created_at, i.c.id)
    )
    return [Received(r.id, r.slug, r.name, Role(r.role), r.invited_by, r.created_at) for r in rows]


def accept(db: Connection, *, user_id: int, invitation_id: int, now: datetime) -> Received:
    """Make the user a member of the inviting workspace with the invited role."""
    found = _mine(db, user_id=user_id, invitation_id=invitation_id)
    i = t.invitations
    accounts.set_member(
        db,
        workspace_id=_workspace_of(db, invitation_id),
        email=_email_of(db, user_id),
        role=found.role,
    )
    db.execute(i.update().where(i.c.id == invitation_id).values(status=ACCEPTED, answered_at=now))
    _record(db, invitation_id, kind="invitation_accepted", user_id=user_id, now=now)
    return found


def decline(db: Connection, *, user_id: int, invitation_id: int, now: datetime) -> Received:
    """Refuse the invitation: nothing changes in the workspace but its status."""
    found = _mine(db, user_id=user_id, invitation_id=invitation_id)
    i = t.invitations
    db.execute(i.update().where(i.c.id == invitation_id).values(status=DECLINED, answered_at=now))
    _record(db, invitation_id, kind="invitation_declined", user_id=user_id, now=now)
    return found


def _mine(db: Connection, *, user_id: int, invitation_id: int) -> Received:
    """The user's pending invitation `invitation_id`; NotFound for any other, whoever's."""
    for each in received(db, user_id=user_id):
        if each.id == invitation_id:
            return each
    raise NotFound("no pending invitation with this number for you")


def _record(db: Connection, invitation_id: int, *, kind: str, user_id: int, now: datetime) -> None:
    email = _email_of(db, user_id)
    events.record(
        db,
        workspace_id=_workspace_of(db, invitation_id),
        kind=kind,
        actor=email,
        now=now,
        detail={"email": email},
    )


def _workspace_of(db: Connection, invitation_id: int) -> int:
    i = t.invitations
    workspace_id = db.scalar(sa.select(i.c.workspace_id).where(i.c.id == invitation_id))
    if workspace_id is None:
        raise NotFound("no pending invitation with this number for you")
    return int(workspace_id)


def _email_of(db: Connection, user_id: int) -> str:
    u = t.users
    email = db.scalar(sa.select(u.c.email).where(u.c.id == user_id))
    if email is None:
        raise NotFound("no such user")
    return str(email)


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"role must be 'member' or 'admin', not {role!r}") from None


def _invitation(row: sa.Row[tuple[object, ...]]) -> Invitation:
    m = row._mapping
    return Invitation(
        id=int(m["id"]),
        email=str(m["email"]),
        role=Role(m["role"]),
        status=str(m["status"]),
        invited_by=str(m["invited_by"]),
        created_at=m["created_at"],
    )
