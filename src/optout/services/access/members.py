"""Who has access to a workspace: its members (users with a role) and its API keys.

Changing either is an admin's act (`Principal.require(Role.ADMIN)`), recorded in the
audit log. Someone who is not a member yet is invited and joins by accepting
(`invitations`); only the installation's operator (`optout user add`) creates
accounts. A workspace always keeps at least one admin member, so nobody can lock
every admin out by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound
from optout.normalize import normalize_email
from optout.services import events
from optout.services.access import accounts, invitations
from optout.services.access.accounts import Principal, Role


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    name: str
    role: Role


def members(db: Connection, *, workspace_id: int) -> list[Member]:
    u, m = t.users, t.memberships
    found = db.execute(
        sa.select(u.c.id, u.c.email, u.c.name, m.c.role)
        .join(m, m.c.user_id == u.c.id)
        .where(m.c.workspace_id == workspace_id)
        .order_by(u.c.email)
    )
    return [Member(row.id, row.email, row.name, Role(row.role)) for row in found]


def has_user(db: Connection, *, email: str) -> bool:
    address = normalize_email(email).address
    return db.scalar(sa.select(t.users.c.id).where(t.users.c.email == address)) is not None


def is_member(db: Connection, *, workspace_id: int, email: str) -> bool:
    address = normalize_email(email).address
    u, m = t.users, t.memberships
    found = sa.select(u.c.id).join(m, m.c.user_id == u.c.id)
    return (
        db.scalar(found.where(u.c.email == address, m.c.workspace_id == workspace_id)) is not None
    )


def _admins(db: Connection, *, workspace_id: int) -> set[int]:
    m = t.memberships
    return set(
        db.scalars(
            sa.select(m.c.user_id).where(m.c.workspace_id == workspace_id, m.c.role == "admin")
        )
    )


def add_member(
    db: Connection,
    *,
    principal: Principal,
    email: str,
    role: Role | str,
    now: datetime,
    name: str | None = None,
    password: str | None = None,
) -> Member:
    """Give a user a role in the principal's workspace. A user who does not exist yet is
    created when a password is given (else NotFound says so); an existing user's name
    and password are left alone. Demoting the last admin is refused."""
    principal.require(Role.ADMIN)
    try:
        level = Role(role)
    except ValueError:
        raise InvalidInput(f"role must be 'member' or 'admin', not {role!r}") from None
    address = normalize_email(email).address
    u = t.users
    user_id = db.scalar(sa.select(u.c.id).where(u.c.email == address))
    if user_id is None:
        if password is None:
            raise NotFound(f"no user {address}; give a name and a password to create one")
        user_id = accounts.create_user(
            db, email=address, name=name or "", password=password, now=now
        )
    admins = _admins(db, workspace_id=principal.workspace_id)
    if level is Role.MEMBER and admins == {user_id}:
        raise Conflict(f"{address} is the workspace's only admin; make someone else admin first")
    accounts.set_member(db, workspace_id=principal.workspace_id, email=address, role=level)
    events.record(
        db,
        workspace_id=principal.workspace_id,
        kind="member_set",
        actor=principal.actor,
        now=now,
        detail={"email": address, "role": level.value},
    )
    return next(m for m in members(db, workspace_id=principal.workspace_id) if m.user_id == user_id)


def add_or_invite(
    db: Connection, *, principal: Principal, email: str, role: Role | str, now: datetime
) -> Member | invitations.Invitation:
    """An admin giving `email` a role: a member of the workspace has their role changed;
    anyone else is invited, and becomes a member once they accept. The answer for an
    address that has an account elsewhere and for one that has none is the same."""
    principal.require(Role.ADMIN)
    address = normalize_email(email).address
    if is_member(db, workspace_id=principal.workspace_id, email=address):
        return add_member(db, principal=principal, email=address, role=role, now=now)
    return invitations.invite(db, principal=principal, email=address, role=role, now=now)


def remove_member(db: Connection, *, principal: Principal, user_id: int, now: datetime) -> None:
    """Take a user's access to the workspace away (their sessions there end too)."""
    principal.require(Role.ADMIN)
    ws = principal.workspace_id
    found = {m.user_id: m for m in members(db, workspace_id=ws)}
    if user_id not in found:
        raise NotFound(f"no member with user id {user_id}")
    if _admins(db, workspace_id=ws) == {user_id}:
        raise Conflict("this is the workspace's only admin; make someone else admin first")
    m, s = t.memberships, t.web_sessions
    db.execute(m.delete().where(m.c.workspace_id == ws, m.c.user_id == user_id))
    db.execute(s.delete().where(s.c.workspace_id == ws, s.c.user_id == user_id))
    events.record(
        db,
        workspace_id=ws,
        kind="member_removed",
        actor=principal.actor,
        now=now,
        detail={"email": found[user_id].email},
    )


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    role: Role
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def api_keys(db: Connection, *, principal: Principal) -> list[ApiKey]:
    """The workspace's API keys, revoked ones included; never their secrets."""
    principal.require(Role.ADMIN)
    k = t.api_keys
    found = db.execute(
        sa.select(k).where(k.c.workspace_id == principal.workspace_id).order_by(k.c.id)
    ).mappings()
    return [
        ApiKey(
            id=row["id"],
            name=row["name"],
            prefix=row["prefix"],
            role=Role(row["role"]),
            created_by=row["created_by"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
        )
        for row in found
    ]
