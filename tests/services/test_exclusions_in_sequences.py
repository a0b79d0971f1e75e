"""Where an exclusion applies (R16): every sequence whose ruleset applies exclusions, not
those whose ruleset has them off; an audience's switch-off only for what it enrolls. The
answer agrees with explain, and turning exclusions off where sequences run asks first,
naming the rules that stop applying and whom they cover."""

from __future__ import annotations

import pytest

from optout.db import tables
from optout.eligibility.model import RulesetSpec
from optout.errors import ConfirmationRequired
from optout.services import fresh_rules
from optout.services.exclusions import in_sequences
from optout.services.naming import row_by_name
from optout.services.sequences import audiences, rulesets
from tests.factories import World


def _workspace(world: World) -> dict[str, int]:
    world.company("acme.com", "Acme")
    for n in range(8):  # rules below stay under the workspace's mass-exclusion share
        world.person(f"p{n}@initech.com", company="initech.com", title="CTO")
    dan = world.person("dan@acme.com", company="acme.com", title="CTO")
    world.exclusion(
        "Customers", "company", "company.domain in (acme.com)", exclude_from_sequences=True
    )
    world.exclusion("CTOs at acme", "people", 'person.email = "dan@acme.com"')
    world.ruleset("Standard")
    world.ruleset("Transactional", exclusions_enabled=False)
    audience = world.audience("Tech")
    audiences.switch_off(
        world.db,
        workspace_id=world.ws,
        audience="Tech",
        exclusion="CTOs at acme",
        actor="test@optout",
        now=world.now,
    )
    return {
        "dan": dan,
        "audience": audience,
        "outbound": world.sequence("Outbound", ruleset="Standard", audience="Tech"),
        "webinar": world.sequence("Webinar", ruleset="Transactional"),
        "intro": world.sequence("Intro", ruleset="Standard"),
    }


def _names(uses: tuple[in_sequences.SequenceUse, ...]) -> list[str]:
    return [s.name for s in uses]


def test_R16_reach_names_the_sequences_that_bypass_a_rule_and_agrees_with_explain(
    world: World,
) -> None:
    _workspace(world)
    specs = {s.name: s for s in fresh_rules.all_specs(world.db, workspace_id=world.ws)}
    reach = in_sequences.reach_of_all(world.db, workspace_id=world.ws, rules=list(specs.values()))
    customers = reach[specs["Customers"].id]
    assert _names(customers.applies_in) == ["Intro", "Outbound"]
    assert _names(customers.bypassed_by) == ["Webinar"]
    assert customers.summary() == (
        "applies in Intro and Outbound, but not in Webinar, whose ruleset 'Transactional' "
        "ignores every exclusion; no audience can switch it off"
    )
    switched = reach[specs["CTOs at acme"].id]
    assert _names(switched.applies_in) == ["Intro"]
    assert _names(switched.switched_off_in) == ["Outbound"]
    assert "enrollments from audience 'Tech' into Outbound skip it" in switched.summary()

    # What explain decides for dan, sequence by sequence, is what the reach says.
    for sequence in ("Intro", "Outbound", "Webinar"):
        decision = world.explain("dan@acme.com", sequence, via_audience=False).decision
        blocked_by = {r.evidence.get("exclusion") for r in decision.reasons}
        applies = sequence in _names(customers.applies_in)
        assert ("Customers" in blocked_by) is applies, sequence
    assert world.explain("dan@acme.com", "Webinar", via_audience=False).decision.allowed


def test_R16_turning_exclusions_off_where_sequences_run_asks_first(world: World) -> None:
    ids = _workspace(world)
    fay = world.person("fay@globex.com", company="globex.com")
    assert world.enroll(ids["intro"], [fay]).enrolled == 1
    # A rule saved after she was enrolled: it blocks new enrollments, she stays (R15).
    world.exclusion("Globex", "people", "person.email_domain = globex.com")
    standard = row_by_name(
        world.db, tables.rulesets, workspace_id=world.ws, name="Standard", what="ruleset"
    )["id"]

    def turn_off(confirm: bool) -> RulesetSpec:
        return rulesets.update(
            world.db,
            workspace_id=world.ws,
            ruleset_id=standard,
            changes={"exclusions_enabled": False},
            actor="test@optout",
            now=world.now,
            confirm=confirm,
        )

    with pytest.raises(ConfirmationRequired) as refused:
        turn_off(confirm=False)
    message = refused.value.message
    assert "makes Intro and Outbound ignore every exclusion" in message
    assert "'Customers' (set to apply in every sequence) covers 1 person, 0 of them" in message
    assert "'CTOs at acme' covers 1 person" in message
    assert "'Globex' covers 1 person, 1 of them enrolled there" in message
    assert rulesets.spec(world.db, workspace_id=world.ws, ruleset_id=standard).exclusions_enabled
    assert not world.explain("dan@acme.com", "Intro").decision.allowed

    assert turn_off(confirm=True).exclusions_enabled is False
    assert world.explain("dan@acme.com", "Intro", via_audience=False).decision.allowed
    assert _names(tuple(in_sequences.bypassing_sequences(world.db, workspace_id=world.ws))) == [
        "Intro",
        "Outbound",
        "Webinar",
    ]


def test_R16_a_ruleset_no_sequence_uses_turns_exclusions_off_without_asking(
    world: World,
) -> None:
    _workspace(world)
    world.ruleset("Spare")
    spare = row_by_name(
        world.db, tables.rulesets, workspace_id=world.ws, name="Spare", what="ruleset"
    )["id"]
    saved = rulesets.update(
        world.db,
        workspace_id=world.ws,
        ruleset_id=spare,
        changes={"exclusions_enabled": False},
        actor="test@optout",
        now=world.now,
    )
    assert saved.exclusions_enabled is False


def test_R16_moving_a_sequence_to_a_ruleset_with_exclusions_off_asks_first(
    world: World,
) -> None:
    ids = _workspace(world)
    off = row_by_name(
        world.db, tables.rulesets, workspace_id=world.ws, name="Transactional", what="ruleset"
    )["id"]
    with pytest.raises(ConfirmationRequired) as refused:
        in_sequences.confirm_move(
            world.db, workspace_id=world.ws, sequence_id=ids["intro"], ruleset_id=off, now=world.now
        )
    assert "moving Intro to ruleset 'Transactional'" in refused.value.message
    assert "'Customers' (set to apply in every sequence) covers 1 person" in refused.value.message
    # The webinar already ignores exclusions: moving it between such rulesets asks nothing.
    in_sequences.confirm_move(
        world.db, workspace_id=world.ws, sequence_id=ids["webinar"], ruleset_id=off, now=world.now
    )
