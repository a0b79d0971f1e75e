"""Accounts: passwords, sessions, API keys, roles (R2: members opt out without admin)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services.access import accounts
from optout.services.access.accounts import NotAllowed, NotSignedIn, Principal, Role
from tests.factories import World


def _member(world: World, email: str, role: str) -> None:
    accounts.create_user(
        world.db, email=email, name="", password="correct horse battery", now=world.now
    )
    accounts.set_member(world.db, workspace_id=world.ws, email=email, role=role)


def test_R2_sign_in_opens_a_session_with_the_members_role(world: World) -> None:
    _member(world, "rep@acme-sales.com", "member")
    token, csrf = accounts.sign_in(
        world.db,
        email="Rep@Acme-Sales.com",
        password="correct horse battery",
        workspace_id=world.ws,
        now=world.now,
    )
    principal, expected_csrf = accounts.session_principal(world.db, token=token, now=world.now)
    assert (principal.role, principal.actor, expected_csrf) == (
        Role.MEMBER,
        "rep@acme-sales.com",
        csrf,
    )
    with pytest.raises(NotAllowed):
        principal.require(Role.ADMIN)
    stored = world.db.scalar(sa.select(t.users.c.password_hash))
    assert "correct horse" not in stored
    accounts.sign_out(world.db, token=token)
    with pytest.raises(NotSignedIn):
        accounts.session_principal(world.db, token=token, now=world.now)


def test_R34_wrong_password_short_password_and_non_member_are_refused(world: World) -> None:
    _member(world, "rep@acme-sales.com", "member")
    with pytest.raises(NotSignedIn, match="wrong email or password"):
        accounts.sign_in(
            world.db,
            email="rep@acme-sales.com",
            password="nope nope nope",
            workspace_id=world.ws,
            now=world.now,
        )
    with pytest.raises(InvalidInput, match="at least 10"):
        accounts.create_user(
            world.db, email="x@acme-sales.com", name="", password="short", now=world.now
        )
    other = World(world.db, world.now, slug="other-co")
    with pytest.raises(NotAllowed, match="not a member"):
        accounts.sign_in(
            world.db,
            email="rep@acme-sales.com",
            password="correct horse battery",
            workspace_id=other.ws,
            now=world.now,
        )


def test_api_keys_are_hashed_scoped_and_revocable(world: World) -> None:
    _member(world, "boss@acme-sales.com", "admin")
    token, _ = accounts.sign_in(
        world.db,
        email="boss@acme-sales.com",
        password="correct horse battery",
        workspace_id=world.ws,
        now=world.now,
    )
    admin, _ = accounts.session_principal(world.db, token=token, now=world.now)
    new = accounts.create_api_key(
        world.db, principal=admin, name="zapier", role="member", now=world.now
    )
    assert new.key.startswith("ok_")
    assert new.key.split("_", 2)[2] not in str(world.db.execute(sa.select(t.api_keys)).all())
    principal = accounts.api_key_principal(world.db, key=new.key, now=world.now)
    assert (principal.workspace_id, principal.role, principal.actor) == (
        world.ws,
        Role.MEMBER,
        "api-key:zapier",
    )
    with pytest.raises(NotAllowed):
        accounts.create_api_key(
            world.db, principal=principal, name="x", role="admin", now=world.now
        )
    with pytest.raises(NotSignedIn):
        accounts.api_key_principal(world.db, key=new.key[:-1] + "x", now=world.now)
    accounts.revoke_api_key(world.db, principal=admin, key_id=new.id, now=world.now)
    with pytest.raises(NotSignedIn, match="revoked"):
        accounts.api_key_principal(world.db, key=new.key, now=world.now)


def test_a_busy_api_key_records_its_use_once_a_minute(world: World) -> None:
    boss = Principal(workspace_id=world.ws, role=Role.ADMIN, actor="test")
    new = accounts.create_api_key(
        world.db, principal=boss, name="busy", role="member", now=world.now
    )
    k = t.api_keys

    def last_used() -> datetime | None:
        return world.db.scalar(sa.select(k.c.last_used_at).where(k.c.id == new.id))

    assert accounts.api_key_use_is_stale(world.db, key_id=new.id, now=world.now)
    accounts.touch_api_key(world.db, key_id=new.id, now=world.now)
    assert last_used() == world.now
    soon = world.now + timedelta(seconds=30)
    assert not accounts.api_key_use_is_stale(world.db, key_id=new.id, now=soon)
    accounts.touch_api_key(world.db, key_id=new.id, now=soon)
    assert last_used() == world.now
    later = world.now + timedelta(minutes=2)
    assert accounts.api_key_use_is_stale(world.db, key_id=new.id, now=later)
    accounts.touch_api_key(world.db, key_id=new.id, now=later)
    assert last_used() == later
