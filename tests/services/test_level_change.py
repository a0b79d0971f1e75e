"""A level change that stops a rule covering people it covers now asks for confirmation
first, naming how many and why (R12, R22): a company rule covers linked companies, a
people rule does not."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from optout.db import tables
from optout.errors import ConfirmationRequired
from optout.filters import Level
from optout.services.directory import companies
from optout.services.exclusions import saves
from tests.factories import World


def _acme_group(world: World) -> tuple[int, int]:
    """acme-labs.io linked under acme.com, a rule on acme.com's domain; a person at each."""
    parent = world.company("acme.com", "Acme")
    child = world.company("acme-labs.io", "Acme Labs")
    companies.link(world.db, workspace_id=world.ws, parent_id=parent, child_id=child, now=world.now)
    at_parent = world.person("k@acme.com", company="acme.com")
    at_child = world.person("l@acme-labs.io", company="acme-labs.io")
    world.exclusion("Acme group", "company", "company.domain in (acme.com)")
    return at_parent, at_child


def _level_change(world: World, *, confirm: bool) -> saves.Saved:
    return saves.update(
        world.db,
        workspace_id=world.ws,
        name="Acme group",
        actor="test@optout",
        now=world.now,
        level="people",
        confirm=confirm,
    )


def test_R12_R22_level_change_that_drops_a_linked_company_asks_first(world: World) -> None:
    _, at_child = _acme_group(world)
    seq = world.sequence()
    assert world.explain("l@acme-labs.io").decision.allowed is False

    with pytest.raises(ConfirmationRequired) as refused:
        _level_change(world, confirm=False)
    message = refused.value.message
    assert "stops it covering 1 person it covers now (l@acme-labs.io)" in message
    assert "linked to a matching one" in message
    # Nothing changed: the rule is still at the company level and still refuses l@.
    assert saves.get(world.db, workspace_id=world.ws, name="Acme group").level is Level.COMPANY
    assert world.explain("l@acme-labs.io").decision.allowed is False
    assert world.enroll(seq, [at_child]).enrolled == 0
    ev = tables.events
    updates = sa.select(sa.func.count()).where(
        ev.c.workspace_id == world.ws, ev.c.kind == "exclusion_updated"
    )
    assert world.db.scalar(updates) == 0

    saved = _level_change(world, confirm=True)
    assert saved.exclusion.level is Level.PEOPLE
    assert world.explain("l@acme-labs.io").decision.allowed is True
    assert world.explain("k@acme.com").decision.allowed is False
    assert world.enroll(seq, [at_child]).enrolled == 1


def test_R22_level_change_that_drops_nobody_needs_no_confirmation(world: World) -> None:
    world.company("acme.com", "Acme")
    world.person("k@acme.com", company="acme.com")
    for n in range(5):  # so the rule stays below the workspace's mass-exclusion share
        world.person(f"p{n}@globex.io", company="globex.io")
    world.sequence()
    world.exclusion("Acme", "company", "company.domain in (acme.com)")
    saved = saves.update(
        world.db,
        workspace_id=world.ws,
        name="Acme",
        actor="test@optout",
        now=world.now,
        level="people",
    )
    assert saved.exclusion.level is Level.PEOPLE
    assert world.explain("k@acme.com").decision.allowed is False
