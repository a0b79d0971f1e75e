"""Enrolling by hand with a report of who was not enrolled and why (R17, R29), and one
step rendered for a real person as it will be sent (R3 footer)."""

from __future__ import annotations

import pytest

from optout.errors import InvalidFilter, InvalidInput
from optout.mail.templates import InvalidTemplate
from optout.services.enrollments import enrolling
from optout.services.enrollments.by_hand import enroll_addresses, enroll_filter
from optout.services.sequences.definitions import Step
from optout.services.sequences.step_preview import render_step
from optout.services.suppression import optouts
from tests.factories import World


def test_R17_pasted_addresses_enroll_the_eligible_and_say_why_not_for_the_others(
    world: World,
) -> None:
    seq = world.sequence()
    ann = world.person("ann@acme.com")
    world.person("bob@acme.com")
    world.person("cat@globex.com", company="globex.com")
    world.exclusion("Globex", "company", "company.domain in (globex.com)")
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="bob@acme.com",
        actor="x",
        channel="manual",
        now=world.now,
    )
    world.enroll(seq, [ann])
    report = enroll_addresses(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        text="ann@acme.com, BOB@acme.com\ncat@globex.com; dan@nowhere.com nonsense  ",
        actor="ops@acme",
        now=world.now,
    )
    assert (report.requested, report.enrolled, report.left_out_total) == (3, 0, 5)
    reasons = {left.email: left.reason for left in report.left_out}
    assert reasons["nonsense"] == "not a valid email address"
    assert reasons["dan@nowhere.com"] == "nobody in this workspace has this address"
    assert "opted out" in reasons["bob@acme.com"]
    assert reasons["cat@globex.com"] == "excluded by 'Globex'"
    assert reasons["ann@acme.com"].startswith("already ")

    dan = world.person("dan@acme.com")
    again = enroll_addresses(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        text="dan@acme.com",
        actor="ops@acme",
        now=world.now,
    )
    assert (again.requested, again.enrolled, again.left_out) == (1, 1, [])
    assert world.status_of(seq, dan) == "not_started"


def test_R17_a_filter_enrolls_its_eligible_matches_and_names_the_company_cap(
    world: World,
) -> None:
    world.ruleset("One per company", max_active_per_company=1)
    seq = world.sequence(ruleset="One per company")
    for name in ("ann", "bob", "cat"):
        world.person(f"{name}@acme.com", company="acme.com", title="CTO")
    world.person("dan@acme.com", company="acme.com", title="Intern")
    report = enroll_filter(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        filter='person.title contains "cto"',
        actor="ops@acme",
        now=world.now,
    )
    assert (report.requested, report.enrolled, report.left_out_total) == (3, 1, 2)
    assert all("1 of 1 allowed already active" in left.reason for left in report.left_out)
    counts = enrolling.count_by_status(world.db, workspace_id=world.ws, sequence_id=seq)
    assert counts == {"not_started": 1}
    with pytest.raises(InvalidFilter):
        enroll_filter(
            world.db,
            workspace_id=world.ws,
            sequence_id=seq,
            filter="person.nope = 1",
            actor="ops@acme",
            now=world.now,
        )
    with pytest.raises(InvalidInput):
        enroll_addresses(
            world.db, workspace_id=world.ws, sequence_id=seq, text=" ", actor="a", now=world.now
        )


def test_R3_a_step_renders_for_a_real_person_with_the_unsubscribe_footer(world: World) -> None:
    ann = world.person(
        "ann@acme.com", company="acme.com", first_name="Ann", fields={"tier": "gold"}
    )
    step = Step(
        kind="email",
        subject="Hi {{ person.first_name }} at {{ company.domain }}",
        body_text="Your tier: {{ person.fields.tier }}. From {{ sender.email }}",
    )
    preview = render_step(
        world.db,
        workspace_id=world.ws,
        person_id=ann,
        step=step,
        from_address="sam@acme-sales.com",
        unsubscribe_url="https://mail.example/u/TOKEN",
    )
    assert preview.email == "ann@acme.com"
    assert preview.rendered.subject == "Hi Ann at acme.com"
    assert preview.rendered.text == (
        "Your tier: gold. From sam@acme-sales.com\n\nUnsubscribe: https://mail.example/u/TOKEN\n"
    )
    assert 'href="https://mail.example/u/TOKEN">Unsubscribe</a>' in preview.rendered.html
    with pytest.raises(InvalidTemplate, match="text body template"):
        render_step(
            world.db,
            workspace_id=world.ws,
            person_id=ann,
            step=Step(kind="email", subject="x", body_text="{{ person.first_name "),
            from_address="sam@acme-sales.com",
            unsubscribe_url="https://mail.example/u/TOKEN",
        )
