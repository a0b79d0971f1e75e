"""Accounts: users with a role per workspace, sign-in sessions and API keys.

Roles: a `member` may opt people out, enroll and unenroll, and edit exclusions and
audiences (R2: no admin needed to opt someone out); an `admin` may also change
rulesets, CRM connections, members and API keys. Secrets are kept only as hashes:
passwords with scrypt, session tokens and API-key secrets with SHA-256 (they are
long random strings, so a fast hash is enough).

Sign-in does the same scrypt work whether or not the address names a user (a stand-in
hash is checked when it does not), so its timing tells no one which addresses have
accounts. A new password ends every session of its user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound, OptoutError
from optout.normalize import normalize_email
from optout.services.access.password_rules import check_password

SESSION_LIFETIME = timedelta(days=14)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
API_KEY_PREFIX = "ok_"


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


class NotAllowed(OptoutError):
    """The signed-in user or API key may not do this (wrong role or no access)."""

    code = "forbidden"


class NotSignedIn(OptoutError):
    """No valid session or API key was presented."""

    code = "unauthorized"


@dataclass(frozen=True)
class Principal:
    """Who is acting, in which workspace, with which role."""

    workspace_id: int
    role: Role
    actor: str  # as written to the audit log
    user_id: int | None = None
    api_key_id: int | None = None

    def require(self, role: Role) -> None:
        if role is Role.ADMIN and self.role is not Role.ADMIN:
            raise NotAllowed("this needs an admin of the workspace")


def _hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(computed.hex(), digest)


@cache
def _stand_in_hash() -> str:
    """A hash of a random password, checked when no user has the address given: the
    same scrypt work as for a real user, and never a match."""
    return _hash_password(secrets.token_urlsafe(32))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create_user(db: Connection, *, email: str, name: str, password: str, now: datetime) -> int:
    address = normalize_email(email).address
    check_password(password, email=address)
    u = t.users
    if db.scalar(sa.select(u.c.id).where(u.c.email == address)) is not None:
        raise Conflict(f"a user {address} exists already")
    return int(
        db.execute(
            u.insert()
            .values(
                email=address,
                name=name.strip(),
                password_hash=_hash_password(password),
                created_at=now,
            )
            .returning(u.c.id)
        ).scalar_one()
    )


def set_password(db: Connection, *, email: str, password: str) -> None:
    """Give an existing user a new password and end every session they have: whoever
    held the old password (or a session opened with it) is signed out everywhere."""
    user_id = _user_id(db, email=email)
    check_password(password, email=normalize_email(email).address)
    u = t.users
    db.execute(u.update().where(u.c.id == user_id).values(password_hash=_hash_password(password)))
    db.execute(t.web_sessions.delete().where(t.web_sessions.c.user_id == user_id))


def set_member(db: Connection, *, workspace_id: int, email: str, role: Role | str) -> None:
    """Give a user a role in a workspace (or change it)."""
    try:
        level = Role(role)
    except ValueError:
        raise InvalidInput(f"role must be 'member' or 'admin', not {role!r}") from None
    user_id = _user_id(db, email=email)
    m = t.memberships
    db.execute(m.delete().where(m.c.user_id == user_id, m.c.workspace_id == workspace_id))
    db.execute(m.insert().values(user_id=user_id, workspace_id=workspace_id, role=level.value))


def _user_id(db: Connection, *, email: str) -> int:
    address = normalize_email(email).address
    found = db.scalar(sa.select(t.users.c.id).where(t.users.c.email == address))
    if found is None:
        raise NotFound(f"no user {address}")
    return int(found)


@dataclass(frozen=True)
class Credentials:
    """A password that matched, for a member of the workspace: what a session opens on."""

    user_id: int
    workspace_id: int
    password_hash: str  # the hash it matched, so a password changed since opens nothing


def check_credentials(
    db: Connection, *, email: str, password: str, workspace_id: int | None
) -> Credentials:
    """The user whose password this is, if they are a member of the workspace. Only reads,
    so the slow hash runs outside any write lock. `workspace_id` None: no such workspace;
    the password is checked all the same, so the answer takes as long."""
    u, m = t.users, t.memberships
    try:
        address = normalize_email(email).address
    except InvalidInput:
        address = None
    user = (
        db.execute(sa.select(u).where(u.c.email == address)).mappings().first()
        if address is not None
        else None
    )
    stored = user["password_hash"] if user is not None else _stand_in_hash()
    if not _check_password(password, stored) or user is None:
        raise NotSignedIn("wrong email or password")
    if (
        workspace_id is None
        or db.scalar(
            sa.select(m.c.role).where(m.c.user_id == user["id"], m.c.workspace_id == workspace_id)
        )
        is None
    ):
        raise NotAllowed("this user is not a member of the workspace")
    return Credentials(user_id=user["id"], workspace_id=workspace_id, password_hash=stored)


def open_session(db: Connection, *, credentials: Credentials, now: datetime) -> tuple[str, str]:
    """A session for checked credentials: (cookie token, CSRF token). Refused if the
    password changed since it was checked (that change ended every session)."""
    u = t.users
    unchanged = db.scalar(
        sa.select(u.c.id).where(
            u.c.id == credentials.user_id, u.c.password_hash == credentials.password_hash
        )
    )
    if unchanged is None:
        raise NotSignedIn("wrong email or password")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    db.execute(
        t.web_sessions.insert().values(
            token_hash=_sha256(token),
            user_id=credentials.user_id,
            workspace_id=credentials.workspace_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token, csrf


def sign_in(
    db: Connection, *, email: str, password: str, workspace_id: int | None, now: datetime
) -> tuple[str, str]:
    """Check the password and open a session in the workspace: (cookie token, CSRF token)."""
    checked = check_credentials(db, email=email, password=password, workspace_id=workspace_id)
    return open_session(db, credentials=checked, now=now)


def session_principal(db: Connection, *, token: str, now: datetime) -> tuple[Principal, str]:
    """The principal of a session cookie and its CSRF token, or NotSignedIn."""
    s, u, m = t.web_sessions, t.users, t.memberships
    row = db.execute(
        sa.select(
            s.c.user_id, s.c.workspace_id, s.c.csrf_token, s.c.expires_at, u.c.email, m.c.role
        )
        .join(u, u.c.id == s.c.user_id)
        .join(m, sa.and_(m.c.user_id == s.c.user_id, m.c.workspace_id == s.c.workspace_id))
        .where(s.c.token_hash == _sha256(token))
    ).first()
    if row is None or row.expires_at <= now:
        raise NotSignedIn("please sign in")
    principal = Principal(
        workspace_id=row.workspace_id, role=Role(row.role), actor=row.email, user_id=row.user_id
    )
    return principal, row.csrf_token


def sign_out(db: Connection, *, token: str) -> None:
    db.execute(t.web_sessions.delete().where(t.web_sessions.c.token_hash == _sha256(token)))


@dataclass(frozen=True)
class NewApiKey:
    id: int
    name: str
    role: Role
    key: str  # shown once; only its hash is kept


def create_api_key(
    db: Connection, *, principal: Principal, name: str, role: Role | str, now: datetime
) -> NewApiKey:
    principal.require(Role.ADMIN)
    level = Role(role)
    if not name.strip():
        raise InvalidInput("an API key needs a name")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    k = t.api_keys
    key_id = db.execute(
        k.insert()
        .values(
            workspace_id=principal.workspace_id,
            name=name.strip(),
            prefix=prefix,
            secret_hash=_sha256(secret),
            role=level.value,
            created_by=principal.actor,
            created_at=now,
        )
        .returning(k.c.id)
    ).scalar_one()
    return NewApiKey(int(key_id), name.strip(), level, f"{API_KEY_PREFIX}{prefix}_{secret}")


def api_key_principal(db: Connection, *, key: str, now: datetime) -> Principal:
    """The principal of an API key (`ok_<prefix>_<secret>`), or NotSignedIn. Only reads:
    `touch_api_key` records the use."""
    body = key.removeprefix(API_KEY_PREFIX)
    prefix, _, secret = body.partition("_")
    k = t.api_keys
    row = db.execute(sa.select(k).where(k.c.prefix == prefix)).mappings().first()
    if (
        not key.startswith(API_KEY_PREFIX)
        or row is None
        or row["revoked_at"] is not None
        or not hmac.compare_digest(row["secret_hash"], _sha256(secret))
    ):
        raise NotSignedIn("invalid or revoked API key")
    return Principal(
        workspace_id=row["workspace_id"],
        role=Role(row["role"]),
        actor=f"api-key:{row['name']}",
        api_key_id=row["id"],
    )


LAST_USED_PRECISION = timedelta(minutes=1)


def api_key_use_is_stale(db: Connection, *, key_id: int, now: datetime) -> bool:
    """Whether `touch_api_key` would write: the recorded use is over a minute old."""
    k = t.api_keys
    last = db.scalar(sa.select(k.c.last_used_at).where(k.c.id == key_id))
    return last is None or last < now - LAST_USED_PRECISION


def touch_api_key(db: Connection, *, key_id: int, now: datetime) -> None:
    """Record that the key was used at `now`; to the minute, so a busy key writes once a
    minute rather than on every request."""
    k = t.api_keys
    db.execute(
        k.update()
        .where(
            k.c.id == key_id,
            sa.or_(k.c.last_used_at.is_(None), k.c.last_used_at < now - LAST_USED_PRECISION),
        )
        .values(last_used_at=now)
    )


def revoke_api_key(db: Connection, *, principal: Principal, key_id: int, now: datetime) -> None:
    principal.require(Role.ADMIN)
    k = t.api_keys
    done = db.execute(
        k.update()
        .where(
            k.c.id == key_id, k.c.workspace_id == principal.workspace_id, k.c.revoked_at.is_(None)
        )
        .values(revoked_at=now)
    ).rowcount
    if not done:
        raise NotFound(f"no active API key with id {key_id}")
