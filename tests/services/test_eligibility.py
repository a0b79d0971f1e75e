"""The eligibility decision as users meet it: explain, personas, caps, cooldown (R9, R24,
R25, R27, R29, R30)."""

from __future__ import annotations

from datetime import timedelta

from optout.eligibility import Status
from optout.services.enrollments import enrolling
from optout.services.sequences import audiences
from tests.factories import World


def test_R29_explain_lists_every_check_in_precedence_order_with_evidence(world: World) -> None:
    world.person("ann@acme.com", company="acme.com", title="CTO")
    world.sequence()
    world.exclusion("Customers", "company", "company.domain in (acme.com, globex.io)")
    world.exclusion("Interns", "people", 'person.title contains "intern"')
    world.exclusion("Old", "people", "person.title = cfo", enabled=False)
    explanation = world.explain("ann@acme.com")
    decision = explanation.decision
    assert not decision.allowed
    checks = [o.check for o in decision.outcomes]
    assert checks == [
        "complained",
        "bounced",
        "opted_out",
        "ruleset",
        "exclusion",  # Customers: not enforced, tier 4
        "exclusion",  # Interns
        "exclusion",  # Old (disabled)
        "audience",
        "already_enrolled",
        "cooldown",
        "company_cap",
    ]
    tiers = [o.tier for o in decision.outcomes]
    assert tiers == sorted(tiers)
    customers = decision.outcomes[4]
    assert customers.status is Status.BLOCK
    assert customers.evidence["conditions"] == [
        {"condition": "company.domain in (acme.com, globex.io)", "actual": "acme.com"}
    ]
    assert customers.evidence["exclude_from_sequences"] is False
    interns = decision.outcomes[5]
    assert interns.status is Status.PASS
    assert decision.primary_reason == customers


def test_R29_explain_for_an_allowed_person_says_why(world: World) -> None:
    world.person("cat@globex.io", company="globex.io", title="Head of IT")
    world.sequence()
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    decision = world.explain("cat@globex.io").decision
    assert decision.allowed
    assert decision.reasons == ()
    assert {o.status for o in decision.outcomes} <= {Status.PASS, Status.SKIP}


def test_R24_persona_title_words_keep_people_out_of_the_audience(world: World) -> None:
    rep = world.person("a@acme.com", company="acme.com", title="Sales Development Rep")
    cto = world.person("b@acme.com", company="acme.com", title="CTO")
    intern = world.person("c@acme.com", company="acme.com", title="Engineering Intern")
    world.persona("Tech buyers", include=["CTO", "engineering", "IT"], exclude=["sales", "intern"])
    audience_id = world.audience("Tech", persona="Tech buyers")
    seq = world.sequence(audience="Tech")
    spec = audiences.spec_by_name(world.db, workspace_id=world.ws, name="Tech")
    assert audiences.size(world.db, workspace_id=world.ws, audience=spec, now=world.now) == 1
    assert world.enroll(seq, [rep, cto, intern], audience_id=audience_id).enrolled == 1
    assert world.status_of(seq, cto) == "not_started"
    persona = [o for o in world.explain("c@acme.com").decision.outcomes if o.check == "audience"]
    assert persona[0].status is Status.BLOCK
    assert "does not fit persona 'Tech buyers'" in persona[0].summary


def test_R25_personal_email_operator_and_ends_with_rule(world: World) -> None:
    gmail = world.person("joe@gmail.com")
    gmx = world.person("max@GMX.de")
    work = world.person("joe@acme.com", company="acme.com")
    hotmail = world.person("zoe@hotmail.co.uk")
    seq = world.sequence()
    world.exclusion("Personal", "people", "person.email_domain is personal")
    assert world.enroll(seq, [gmail, gmx, work, hotmail]).enrolled == 1
    seq2 = world.sequence("Second")
    world.exclusion("Gmail only", "people", 'person.email ends with "@gmail.com"', enabled=True)
    assert world.enroll(seq2, [work]).enrolled == 1


def test_R27_company_cap_limits_active_people_per_company_within_a_batch(world: World) -> None:
    staff = [world.person(f"p{i}@acme.com", company="acme.com") for i in range(5)]
    other = world.person("x@globex.io", company="globex.io")
    free = world.person("solo@gmail.com")
    world.ruleset("Two per company", max_active_per_company=2)
    seq = world.sequence(ruleset="Two per company")
    assert world.enroll(seq, [*staff, other, free]).enrolled == 4
    assert world.enroll(seq, staff).enrolled == 0
    cap = [o for o in world.explain("p4@acme.com").decision.outcomes if o.check == "company_cap"]
    assert cap[0].status is Status.BLOCK
    assert cap[0].evidence["active"] == 2
    enrolling.unenroll(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        person_ids=[staff[0]],
        actor="a",
        now=world.now,
    )
    assert world.enroll(seq, staff).enrolled == 1


def test_R9_cooldown_counts_from_the_end_of_the_previous_enrollment(world: World) -> None:
    ann = world.person("ann@acme.com")
    world.ruleset("Cooldown", reenroll_cooldown_days=7)
    seq = world.sequence(ruleset="Cooldown")
    world.enroll(seq, [ann])
    ended_at = world.now + timedelta(days=20)
    enrolling.unenroll(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        person_ids=[ann],
        actor="a",
        now=ended_at,
    )
    world.now = ended_at + timedelta(days=6, hours=23)
    assert world.enroll(seq, [ann]).enrolled == 0
    cooldown = [o for o in world.explain("ann@acme.com").decision.outcomes if o.check == "cooldown"]
    assert cooldown[0].status is Status.BLOCK
    assert cooldown[0].evidence["cooldown_ends"] == str(ended_at + timedelta(days=7))
    world.now = ended_at + timedelta(days=7, minutes=1)
    assert world.enroll(seq, [ann]).enrolled == 1


def test_R8_manual_unenroll_touches_one_sequence_and_is_no_opt_out(world: World) -> None:
    ann = world.person("ann@acme.com")
    first, second = world.sequence("First"), world.sequence("Second")
    world.enroll(first, [ann])
    world.enroll(second, [ann])
    removal = enrolling.unenroll(
        world.db,
        workspace_id=world.ws,
        sequence_id=first,
        person_ids=[ann],
        actor="a",
        now=world.now,
    )
    assert removal.enrollments_ended == 1
    assert world.status_of(first, ann) == "unenrolled"
    assert world.status_of(second, ann) == "not_started"
    third = world.sequence("Third")
    assert world.enroll(third, [ann]).enrolled == 1


def test_R30_audience_lists_every_exclusion_and_what_it_switches_off(world: World) -> None:
    world.audience("Tech")
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    world.exclusion(
        "Deals", "company", "opportunity.is_closed = false", exclude_from_sequences=True
    )
    world.exclusion("Interns", "people", 'person.title contains "intern"')
    world.exclusion("Old", "people", 'person.title contains "cfo"', enabled=False)
    audiences.switch_off(
        world.db,
        workspace_id=world.ws,
        audience="Tech",
        exclusion="Interns",
        actor="a",
        now=world.now,
    )
    states = {
        a.name: a.state
        for a in audiences.affecting_exclusions(world.db, workspace_id=world.ws, audience="Tech")
    }
    assert states == {
        "Customers": "applies",
        "Deals": "enforced",
        "Interns": "switched_off",
        "Old": "disabled",
    }


def test_R17_manual_enrollment_cannot_bypass_an_exclusion(world: World) -> None:
    ann = world.person("ann@acme.com", company="acme.com")
    seq = world.sequence()
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    result = world.enroll(seq, [ann])
    assert (result.requested, result.enrolled, result.blocked) == (1, 0, 1)
