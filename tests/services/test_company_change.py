"""Changing or removing a person's company by hand says first which exclusions stop
covering them and changes nothing until confirmed (R12, R17)."""

from __future__ import annotations

import pytest

from optout.errors import ConfirmationRequired
from optout.services.directory import company_change, people
from tests.factories import World


def _customer(world: World) -> int:
    world.company("acme.com", "Acme")
    world.company("vandelay.com", "Vandelay")
    world.company("globex.io", "Globex")
    for n in range(8):  # the rules stay under the workspace's mass-exclusion share
        world.person(f"p{n}@initech.com", company="initech.com")
    dan = world.person("dan@acme.com", company="acme.com", title="CTO")
    world.exclusion(
        "Customers",
        "company",
        "company.domain in (acme.com, vandelay.com)",
        exclude_from_sequences=True,
    )
    world.exclusion("CTOs", "people", 'person.title = "cto"', enabled=False)
    world.sequence()
    return dan


def _company_of(world: World, person_id: int) -> int | None:
    company: int | None = people.get(world.db, workspace_id=world.ws, person_id=person_id)[
        "company_id"
    ]
    return company


def _change(world: World, person_id: int, domain: str | None, confirm: bool = False) -> object:
    return company_change.change(
        world.db,
        workspace_id=world.ws,
        person_id=person_id,
        domain=domain,
        actor="test@optout",
        now=world.now,
        confirm=confirm,
    )


def test_R12_removing_a_customers_company_names_the_rule_and_waits(world: World) -> None:
    dan = _customer(world)
    acme = _company_of(world, dan)
    with pytest.raises(ConfirmationRequired) as refused:
        _change(world, dan, None)
    assert refused.value.message == (
        "removing the company of dan@acme.com stops 1 exclusion(s) covering them "
        "('Customers'): they may then be enrolled and emailed where these kept them out"
    )
    assert _company_of(world, dan) == acme
    assert world.explain("dan@acme.com").decision.allowed is False

    _change(world, dan, None, confirm=True)
    assert _company_of(world, dan) is None
    assert world.explain("dan@acme.com").decision.allowed is True


def test_R12_moving_a_customer_to_another_company_asks_only_when_a_rule_stops(
    world: World,
) -> None:
    dan = _customer(world)
    _change(world, dan, "vandelay.com")  # still a customer: nothing stops, no question
    assert world.explain("dan@acme.com").decision.allowed is False
    with pytest.raises(ConfirmationRequired) as refused:
        _change(world, dan, "globex.io")
    assert "moving dan@acme.com to globex.io stops 1 exclusion(s)" in refused.value.message
    with pytest.raises(ConfirmationRequired):
        _change(world, dan, "brand-new.example")  # a company made on the way: no rule
    assert world.explain("dan@acme.com").decision.allowed is False
    _change(world, dan, "globex.io", confirm=True)
    assert world.explain("dan@acme.com").decision.allowed is True


def test_R12_a_person_no_rule_covers_changes_company_without_a_question(world: World) -> None:
    _customer(world)
    eve = world.person("eve@globex.io", company="globex.io")
    _change(world, eve, None)
    assert _company_of(world, eve) is None
