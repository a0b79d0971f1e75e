"""Exclusions: levels, linked companies, saving, monitoring, precedence (R12-R18, R20-R22)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from optout.db import tables
from optout.eligibility import Purpose, Status
from optout.errors import ConfirmationRequired, InvalidFilter
from optout.services import events, fresh_rules, monitoring
from optout.services.directory import companies, opportunities, people
from optout.services.exclusions import saves
from optout.services.sequences import audiences
from tests.factories import World, email_status, queued_email


def _team(world: World) -> dict[str, int]:
    return {
        "ann": world.person("ann@acme.com", company="acme.com", title="CTO"),
        "ben": world.person("ben@acme.com", company="acme.com", title="VP Sales"),
        "cat": world.person("cat@globex.io", company="globex.io", title="Head of IT"),
    }


def test_R12_people_level_excludes_only_matching_people(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.exclusion("No CTOs", "people", 'person.title = "cto"')
    assert world.enroll(seq, list(team.values())).enrolled == 2
    assert world.status_of(seq, team["ann"]) is None
    assert world.status_of(seq, team["ben"]) == "not_started"


def test_R12_company_level_excludes_everyone_at_matching_company(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    assert world.enroll(seq, list(team.values())).enrolled == 1
    assert world.status_of(seq, team["cat"]) == "not_started"


def test_R12_company_level_exclusion_covers_the_whole_linked_group(world: World) -> None:
    parent = world.company("globex.com", "Globex")
    child = world.company("initech.net", "Initech (acquired by Globex)")
    companies.link(world.db, workspace_id=world.ws, parent_id=parent, child_id=child, now=world.now)
    at_child = world.person("dan@initech.net", company="initech.net")
    seq = world.sequence()
    world.exclusion("Globex group", "company", "company.domain = globex.com")
    assert world.enroll(seq, [at_child]).enrolled == 0
    reason = world.explain("dan@initech.net").decision.primary_reason
    assert reason is not None
    assert reason.evidence["company"] == "globex.com"
    assert reason.evidence["linked_company"] is True
    companies.unlink(world.db, workspace_id=world.ws, child_id=child, now=world.now)
    assert world.enroll(seq, [at_child]).enrolled == 1


def test_R12_linking_companies_unenrolls_at_once_under_an_enforced_rule(world: World) -> None:
    parent = world.company("globex.com")
    child = world.company("initech.net")
    dan = world.person("dan@initech.net", company="initech.net")
    seq = world.sequence()
    world.enroll(seq, [dan])
    world.exclusion(
        "Globex group", "company", "company.domain = globex.com", exclude_from_sequences=True
    )
    companies.link(world.db, workspace_id=world.ws, parent_id=parent, child_id=child, now=world.now)
    assert world.status_of(seq, dan) == "unenrolled"


def test_R13_save_with_unenroll_removes_active_and_cancels_queued_emails(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, list(team.values()))
    email = queued_email(world, seq, team["ann"])
    saved = world.exclusion(
        "Acme", "company", "company.domain = acme.com", unenroll_existing_on_save=True
    )
    assert saved.preview.enrollments_removed == 2
    assert saved.preview.emails_cancelled == 2
    assert (saved.removal.enrollments_ended, saved.removal.emails_cancelled) == (2, 2)
    assert world.status_of(seq, team["ann"]) == "unenrolled"
    assert world.status_of(seq, team["cat"]) == "not_started"
    assert email_status(world, email) == "cancelled"
    (ended,) = [
        e
        for e in events.history(world.db, workspace_id=world.ws, person_id=team["ben"])
        if e.kind == "enrollment_ended"
    ]
    assert ended.exclusion_id == saved.exclusion.id
    assert ended.rule == f"exclusion:{saved.exclusion.id}"


def test_R13_save_without_unenroll_leaves_active_enrollments(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, list(team.values()))
    world.exclusion("Acme", "company", "company.domain = acme.com")
    assert world.status_of(seq, team["ann"]) == "not_started"


def test_R13_enabling_a_disabled_exclusion_with_unenroll_sweeps_then(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, list(team.values()))
    world.exclusion(
        "Acme",
        "company",
        "company.domain = acme.com",
        unenroll_existing_on_save=True,
        enabled=False,
    )
    assert world.status_of(seq, team["ann"]) == "not_started"
    saves.set_enabled(
        world.db,
        workspace_id=world.ws,
        name="Acme",
        enabled=True,
        actor="a",
        now=world.now,
        confirm=True,
    )
    assert world.status_of(seq, team["ann"]) == "unenrolled"


def test_R13_unenroll_on_save_skips_sequences_whose_ruleset_ignores_exclusions(
    world: World,
) -> None:
    team = _team(world)
    world.ruleset("Raw", exclusions_enabled=False)
    raw = world.sequence("Raw", ruleset="Raw")
    world.enroll(raw, [team["ann"]])
    world.exclusion("Acme", "company", "company.domain = acme.com", unenroll_existing_on_save=True)
    assert world.status_of(raw, team["ann"]) == "not_started"


def test_R14_data_change_unenrolls_at_once_under_enforced_rule(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, list(team.values()))
    email = queued_email(world, seq, team["cat"])
    world.exclusion(
        "Competitors",
        "people",
        'person.fields.status_flag = "competitor"',
        exclude_from_sequences=True,
    )
    removal = people.update(
        world.db,
        workspace_id=world.ws,
        person_id=team["cat"],
        changes={"fields": {"status_flag": "Competitor"}},
        actor="crm-sync",
        now=world.now,
    )
    assert removal.enrollments_ended == 1
    assert world.status_of(seq, team["cat"]) == "unenrolled"
    assert email_status(world, email) == "cancelled"
    assert world.status_of(seq, team["ann"]) == "not_started"


def test_R14_deal_stage_change_unenrolls_that_companys_people(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, list(team.values()))
    deal = world.opportunity("acme.com", name="Acme renewal", stage="Discovery", amount=5000.0)
    world.exclusion(
        "In negotiation",
        "company",
        'opportunity.stage = "Negotiation"',
        exclude_from_sequences=True,
    )
    assert world.status_of(seq, team["ann"]) == "not_started"
    opportunities.update(
        world.db,
        workspace_id=world.ws,
        opportunity_id=deal,
        changes={"stage": "Negotiation"},
        now=world.now,
    )
    assert world.status_of(seq, team["ann"]) == "unenrolled"
    assert world.status_of(seq, team["ben"]) == "unenrolled"
    assert world.status_of(seq, team["cat"]) == "not_started"


def test_R15_rule_without_exclude_from_sequences_blocks_new_but_never_unenrolls(
    world: World,
) -> None:
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, [team["cat"]])
    world.exclusion("Recently active", "people", "person.last_activity_at within last 7 days")
    people.record_activity(
        world.db,
        workspace_id=world.ws,
        person_id=team["cat"],
        kind="meeting",
        source="crm",
        now=world.now,
    )
    people.record_activity(
        world.db,
        workspace_id=world.ws,
        person_id=team["ann"],
        kind="meeting",
        source="crm",
        now=world.now,
    )
    assert world.status_of(seq, team["cat"]) == "not_started"
    assert world.enroll(seq, [team["ann"]]).enrolled == 0
    send = world.explain("cat@globex.io", purpose=Purpose.SEND).decision
    assert send.allowed
    (skipped,) = [o for o in send.outcomes if o.evidence.get("exclusion") == "Recently active"]
    assert skipped.status is Status.SKIP
    assert "mid-sequence" in skipped.summary


def test_R16_ruleset_with_exclusions_off_ignores_every_exclusion(world: World) -> None:
    team = _team(world)
    world.ruleset("Raw", exclusions_enabled=False)
    raw = world.sequence("Raw", ruleset="Raw")
    world.exclusion("Acme", "company", "company.domain = acme.com", exclude_from_sequences=True)
    assert world.enroll(raw, [team["ann"]]).enrolled == 1


def test_R16_audience_switches_off_only_non_enforced_exclusions(world: World) -> None:
    team = _team(world)
    audience_id = world.audience("Everyone")
    seq = world.sequence(audience="Everyone")
    world.exclusion("CTOs", "people", 'person.title = "cto"')
    world.exclusion("Globex", "company", "company.domain = globex.io", exclude_from_sequences=True)
    audiences.switch_off(
        world.db,
        workspace_id=world.ws,
        audience="Everyone",
        exclusion="CTOs",
        actor="a",
        now=world.now,
    )
    with pytest.raises(Exception, match="no audience can switch it off"):
        audiences.switch_off(
            world.db,
            workspace_id=world.ws,
            audience="Everyone",
            exclusion="Globex",
            actor="a",
            now=world.now,
        )
    result = world.enroll(seq, list(team.values()), audience_id=audience_id)
    assert result.enrolled == 2  # ann (switched off for this audience) and ben
    assert world.status_of(seq, team["cat"]) is None
    manual_seq = world.sequence("Manual")
    assert world.enroll(manual_seq, [team["ann"]]).enrolled == 0  # no audience: CTOs applies


def test_R16_disabled_exclusion_applies_nowhere(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.exclusion("Acme", "company", "company.domain = acme.com", enabled=False)
    assert world.enroll(seq, [team["ann"]]).enrolled == 1
    (outcome,) = [o for o in world.explain("ann@acme.com").decision.outcomes if o.exclusion_id]
    assert outcome.status is Status.SKIP
    assert "disabled" in outcome.summary


def test_R17_exceptions_live_in_the_rule_and_removal_makes_eligible_at_once(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.exclusion(
        "Acme but not Ben",
        "company",
        "company.domain = acme.com",
    )
    assert world.enroll(seq, [team["ben"]]).enrolled == 0
    saves.update(
        world.db,
        workspace_id=world.ws,
        name="Acme but not Ben",
        actor="a",
        now=world.now,
        level="people",
        filter='company.domain = acme.com and person.email != "ben@acme.com"',
        confirm=True,
    )
    assert world.enroll(seq, [team["ben"], team["ann"]]).enrolled == 1
    assert world.status_of(seq, team["ben"]) == "not_started"


def test_R18_in_matches_whole_domains_and_ends_with_catches_variants(world: World) -> None:
    edu = world.person("x@uni.edu", company="uni.edu")
    edu_br = world.person("y@uni.edu.br", company="uni.edu.br")
    uk = world.person("z@company.co.uk", company="company.co.uk")
    com = world.person("w@company.com", company="company.com")
    seq = world.sequence()
    world.exclusion("Company", "company", "company.domain in (company.com, uni.edu)")
    world.exclusion("Edu", "people", 'person.email_domain ends with ".edu"')
    assert world.enroll(seq, [edu, edu_br, uk, com]).enrolled == 2
    assert world.status_of(seq, edu_br) == "not_started"
    assert world.status_of(seq, uk) == "not_started"
    with pytest.raises(InvalidFilter, match=r"use the operator ends with \"\.edu\""):
        world.exclusion("Suffix", "company", "company.domain in (edu)")


def test_R18_domain_list_applies_to_companies_that_appear_later(world: World) -> None:
    seq = world.sequence()
    world.exclusion("Future", "company", "company.domain in (newco.io)")
    late = world.person("x@newco.io", company="https://www.NewCo.io/")
    assert world.enroll(seq, [late]).enrolled == 0


def test_R18_preview_lists_near_miss_variants_present_in_the_data(world: World) -> None:
    world.company("acme.com")
    world.company("acme.co.uk")
    world.company("acme.de")
    world.company("globex.io")
    saved = world.exclusion("Acme", "company", "company.domain in (acme.com, globex.io)")
    present = {(m.listed, m.present) for m in saved.preview.near_misses}
    assert present == {("acme.com", "acme.co.uk"), ("acme.com", "acme.de")}


def test_R20_opportunity_rule_excludes_everyone_at_company_with_matching_deal(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.opportunity("acme.com", stage="Negotiation", amount=50000.0)
    world.opportunity("globex.io", stage="Negotiation", amount=500.0, is_closed=True)
    world.exclusion(
        "Big open deals",
        "company",
        "opportunity.is_closed = false and opportunity.amount > 10000",
    )
    assert world.enroll(seq, list(team.values())).enrolled == 1
    assert world.status_of(seq, team["cat"]) == "not_started"


def test_R20_conditions_on_opportunities_must_hold_for_the_same_deal(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.opportunity("acme.com", stage="Negotiation", amount=100.0)
    world.opportunity("acme.com", stage="Closed Lost", amount=90000.0, is_closed=True)
    world.exclusion(
        "Big negotiation",
        "company",
        'opportunity.stage = "negotiation" and opportunity.amount > 10000',
    )
    assert world.enroll(seq, [team["ann"]]).enrolled == 1


def test_R20_has_opportunity_excludes_only_the_linked_people(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    deal = world.opportunity("acme.com", stage="Proposal")
    opportunities.add_contact(
        world.db,
        workspace_id=world.ws,
        opportunity_id=deal,
        person_id=team["ann"],
        role="Decision maker",
        now=world.now,
    )
    world.exclusion("In a deal", "people", "person.has_opportunity = true")
    assert world.enroll(seq, [team["ann"], team["ben"]]).enrolled == 1
    assert world.status_of(seq, team["ben"]) == "not_started"


def test_R21_our_own_sends_never_trip_activity_rules(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, [team["cat"]])
    world.exclusion(
        "Touched lately",
        "people",
        "person.last_activity_at within last 14 days",
        exclude_from_sequences=True,
    )
    people.record_activity(
        world.db,
        workspace_id=world.ws,
        person_id=team["cat"],
        kind="email_sent",
        source="optout",
        sequence_id=seq,
        now=world.now,
    )
    assert world.status_of(seq, team["cat"]) == "not_started"
    person = people.get(world.db, workspace_id=world.ws, person_id=team["cat"])
    assert person["last_activity_at"] is None
    assert person["last_activity_any_at"] == world.now
    assert person["last_emailed_at"] == world.now
    people.record_activity(
        world.db,
        workspace_id=world.ws,
        person_id=team["cat"],
        kind="call",
        source="crm",
        now=world.now,
    )
    assert world.status_of(seq, team["cat"]) == "unenrolled"


def test_R21_a_rule_can_ask_for_activity_from_every_source(world: World) -> None:
    team = _team(world)
    world.sequence()
    world.exclusion("Any touch", "people", "person.last_activity_any_at within last 14 days")
    people.record_activity(
        world.db,
        workspace_id=world.ws,
        person_id=team["cat"],
        kind="email_sent",
        source="optout",
        now=world.now - timedelta(days=3),
    )
    reason = world.explain("cat@globex.io").decision.primary_reason
    assert reason is not None
    assert reason.evidence["exclusion"] == "Any touch"


def test_R6_company_rule_on_reply_activity_stops_the_whole_company(world: World) -> None:
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, list(team.values()))
    world.exclusion(
        "Company replied",
        "company",
        "company.last_replied_at within last 30 days",
        exclude_from_sequences=True,
    )
    people.record_activity(
        world.db,
        workspace_id=world.ws,
        person_id=team["ann"],
        kind="reply",
        source="email",
        now=world.now,
    )
    assert world.status_of(seq, team["ann"]) == "unenrolled"
    assert world.status_of(seq, team["ben"]) == "unenrolled"
    assert world.status_of(seq, team["cat"]) == "not_started"


@pytest.mark.parametrize("few", [0, monitoring.FEW_ENROLLMENTS], ids=["every_rule", "stored"])
def test_R14_monitoring_answers_alike_from_stored_matches_and_from_every_rule(
    world: World, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    """A re-check of a few people reads the decision index; of many, it asks every rule.
    Both ways end the same enrollments, for the same rules, on both kinds of rule."""
    monkeypatch.setattr(monitoring, "FEW_ENROLLMENTS", few)
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, list(team.values()))
    world.exclusion(
        "Company replied",
        "company",
        "company.last_replied_at within last 30 days",
        exclude_from_sequences=True,
    )
    world.exclusion(
        "Competitors",
        "people",
        'person.fields.status_flag = "competitor"',
        exclude_from_sequences=True,
    )
    replied = people.record_activity(
        world.db, workspace_id=world.ws, person_id=team["ann"], kind="reply", source="email",
        now=world.now,
    )  # fmt: skip
    assert replied.enrollments_ended == 2
    flagged = people.update(
        world.db,
        workspace_id=world.ws,
        person_id=team["cat"],
        changes={"fields": {"status_flag": "Competitor"}},
        actor="crm-sync",
        now=world.now,
    )
    assert flagged.enrollments_ended == 1
    statuses = {name: world.status_of(seq, pid) for name, pid in team.items()}
    assert statuses == {"ann": "unenrolled", "ben": "unenrolled", "cat": "unenrolled"}


def test_R22_level_change_keeps_filter_or_fails_clearly(world: World) -> None:
    _team(world)
    world.exclusion("Title", "people", 'person.title contains "sales"')
    with pytest.raises(InvalidFilter) as caught:
        saves.update(
            world.db,
            workspace_id=world.ws,
            name="Title",
            level="company",
            actor="a",
            now=world.now,
        )
    assert "does not fit the company level" in caught.value.message
    assert "Job title" in caught.value.message
    unchanged = saves.get(world.db, workspace_id=world.ws, name="Title")
    assert unchanged.level.value == "people"
    world.exclusion("Domain", "people", "company.domain = acme.com")
    before = saves.get(world.db, workspace_id=world.ws, name="Domain").filter
    moved = saves.update(
        world.db,
        workspace_id=world.ws,
        name="Domain",
        level="company",
        actor="a",
        now=world.now,
        confirm=True,
    )
    assert moved.exclusion.level.value == "company"
    assert moved.exclusion.filter == before


def test_R22_mass_exclusion_needs_confirmation_and_negative_filter_warns(world: World) -> None:
    for i in range(10):
        world.person(f"p{i}@acme.com", company="acme.com")
    with pytest.raises(ConfirmationRequired, match="matches 9 of 10 people"):
        saves.create(
            world.db,
            workspace_id=world.ws,
            name="Everyone",
            level="people",
            filter='person.email != "p1@acme.com"',
            actor="a",
            now=world.now,
        )
    assert fresh_rules.all_specs(world.db, workspace_id=world.ws) == []
    saved = saves.create(
        world.db,
        workspace_id=world.ws,
        name="Everyone",
        level="people",
        filter='person.email != "p1@acme.com"',
        actor="a",
        now=world.now,
        confirm=True,
    )
    assert saved.preview.people_matched == 9
    assert any("negative" in w for w in saved.preview.warnings)


def test_R22_unenroll_limit_needs_confirmation(world: World) -> None:
    world.db.execute(
        tables.workspaces.update().values(mass_unenroll_limit=1, mass_exclusion_share=1.0)
    )
    team = _team(world)
    seq = world.sequence()
    world.enroll(seq, list(team.values()))
    with pytest.raises(ConfirmationRequired, match="would unenroll 2 active enrollments"):
        saves.create(
            world.db,
            workspace_id=world.ws,
            name="Acme",
            level="company",
            filter="company.domain = acme.com",
            unenroll_existing_on_save=True,
            actor="a",
            now=world.now,
        )
    assert world.status_of(seq, team["ann"]) == "not_started"


def test_R22_preview_counts_people_companies_and_sample(world: World) -> None:
    _team(world)
    saved = world.exclusion("Acme", "company", "company.domain = acme.com")
    impact = saved.preview
    assert (impact.people_matched, impact.people_total, impact.companies_matched) == (2, 3, 1)
    assert {row["email"] for row in impact.sample} == {"ann@acme.com", "ben@acme.com"}


def test_R34_unknown_field_operator_and_bad_value_are_refused(world: World) -> None:
    for text, message in [
        ('person.titel = "x"', "unknown field 'person.titel'"),
        ('person.title matches "x"', "expected an operator"),
        ('opportunity.amount > "lots"', "takes a number"),
        ("company.domain in (acme..com)", "not a domain"),
    ]:
        with pytest.raises(InvalidFilter, match=message):
            world.exclusion(
                "Bad", "company" if "opportunity" in text or "in (" in text else "people", text
            )
    assert fresh_rules.all_specs(world.db, workspace_id=world.ws) == []
