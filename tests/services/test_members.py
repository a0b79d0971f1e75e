"""Members, API key listings and ruleset changes: admin acts, audited, never locking a
workspace out of its last admin."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound
from optout.services.access import accounts, members
from optout.services.access.accounts import API_KEY_PREFIX, NotAllowed, Principal, Role
from optout.services.directory import people
from optout.services.sequences import rulesets
from tests.factories import World


def _admin(world: World) -> Principal:
    return Principal(workspace_id=world.ws, role=Role.ADMIN, actor="boss@acme.com")


def test_add_member_creates_a_user_with_a_password_and_keeps_one_admin(world: World) -> None:
    boss = _admin(world)
    ada = members.add_member(
        world.db, principal=boss, email="Ada@Acme.com", role="admin", now=world.now,
        name="Ada", password="long-enough-pw",
    )  # fmt: skip
    with pytest.raises(NotFound):
        members.add_member(
            world.db, principal=boss, email="x@acme.com", role="member", now=world.now
        )
    with pytest.raises(Conflict):  # demoting the only admin
        members.add_member(
            world.db, principal=boss, email="ada@acme.com", role="member", now=world.now
        )
    with pytest.raises(Conflict):  # removing the only admin
        members.remove_member(world.db, principal=boss, user_id=ada.user_id, now=world.now)
    bob = members.add_member(
        world.db, principal=boss, email="bob@acme.com", role="admin", now=world.now,
        password="another-long-pw",
    )  # fmt: skip
    members.remove_member(world.db, principal=boss, user_id=ada.user_id, now=world.now)

    assert [(m.email, m.role) for m in members.members(world.db, workspace_id=world.ws)] == [
        (bob.email, Role.ADMIN)
    ]
    kinds = world.db.scalars(
        sa.select(t.events.c.kind)
        .where(t.events.c.workspace_id == world.ws)
        .order_by(t.events.c.id)
    ).all()
    assert kinds == ["member_set", "member_set", "member_removed"]


def test_member_and_key_changes_need_an_admin(world: World) -> None:
    member = Principal(workspace_id=world.ws, role=Role.MEMBER, actor="m")
    with pytest.raises(NotAllowed):
        members.add_member(
            world.db, principal=member, email="a@acme.com", role="member", now=world.now
        )
    with pytest.raises(NotAllowed):
        members.remove_member(world.db, principal=member, user_id=1, now=world.now)
    with pytest.raises(NotAllowed):
        members.api_keys(world.db, principal=member)


def test_api_keys_are_listed_without_secrets(world: World) -> None:
    made = accounts.create_api_key(
        world.db, principal=_admin(world), name="bridge", role="member", now=world.now
    )

    found = members.api_keys(world.db, principal=_admin(world))

    assert [(k.id, k.name, k.role) for k in found] == [(made.id, "bridge", Role.MEMBER)]
    secret = made.key.removeprefix(API_KEY_PREFIX).split("_", 1)[1]  # may itself hold "_"
    assert secret not in repr(found)


def test_ruleset_update_changes_only_what_is_given_and_records_it(world: World) -> None:
    world.ruleset("Default", reenroll_cooldown_days=7, max_active_per_company=2)
    ruleset_id = world.db.scalar(
        sa.select(t.rulesets.c.id).where(t.rulesets.c.workspace_id == world.ws)
    )

    after = rulesets.update(
        world.db, workspace_id=world.ws, ruleset_id=ruleset_id,
        changes={"max_active_per_company": None, "name": " Careful "}, actor="boss", now=world.now,
    )  # fmt: skip

    assert (after.name, after.reenroll_cooldown_days, after.max_active_per_company) == (
        "Careful", 7, None,
    )  # fmt: skip
    detail = world.db.scalar(
        sa.select(t.events.c.detail).where(t.events.c.kind == "ruleset_updated")
    )
    assert detail["changes"] == {
        "name": ["Default", "Careful"],
        "max_active_per_company": [2, None],
    }
    with pytest.raises(InvalidInput):
        rulesets.update(
            world.db, workspace_id=world.ws, ruleset_id=ruleset_id,
            changes={"reenroll_cooldown_days": -1}, actor="boss", now=world.now,
        )  # fmt: skip
    with pytest.raises(InvalidInput):
        rulesets.update(
            world.db, workspace_id=world.ws, ruleset_id=ruleset_id,
            changes={"status": "x"}, actor="boss", now=world.now,
        )  # fmt: skip


def test_a_person_cannot_join_a_company_of_another_workspace(world: World) -> None:
    other = World(world.db, world.now, slug="other-ws")
    foreign = other.company("foreign.com")
    anna = world.person("anna@acme.com")

    with pytest.raises(NotFound):
        people.create(
            world.db, workspace_id=world.ws, email="bo@acme.com", company_id=foreign, now=world.now
        )
    with pytest.raises(NotFound):
        people.update(
            world.db, workspace_id=world.ws, person_id=anna, changes={"company_id": foreign},
            actor="t", now=world.now,
        )  # fmt: skip
