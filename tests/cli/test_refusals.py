"""A refused enrollment leaves a trace (R35): `enroll --json` says why per address, and the
person's history holds an event naming the sequence and the check (and the exclusion)."""

from __future__ import annotations

import sqlalchemy as sa

from optout.db import tables as t
from tests.cli.conftest import STEPS, Cli


def _refusals(cli: Cli, email: str) -> list[dict[str, object]]:
    events = cli.json("history", email)["events"]
    return [e for e in events if e["kind"] == "enrollment_refused"]


def test_R35_an_opted_out_person_refused_by_enroll_has_the_reason_and_an_event(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("o1@acme.com", company="acme.com")
        world.person("ok@globex.io", company="globex.io")
        world.sequence("Outbound", steps=STEPS)
    cli.ok("opt-out", "o1@acme.com", "--reason", "asked on a call")
    data = cli.json("enroll", "-s", "Outbound", "o1@acme.com", "ok@globex.io")
    assert (data["enrolled"], data["blocked"]) == (1, 1)
    assert data["refused"] == [
        {"email": "o1@acme.com", "code": "opted_out", "reason": "opted out", "exclusion": None}
    ]
    refused = _refusals(cli, "o1@acme.com")
    assert len(refused) == 1
    assert refused[0]["sequence"] == "Outbound"
    assert refused[0]["rule"] == "opted_out"
    assert not _refusals(cli, "ok@globex.io")
    shown = cli.ok("history", "o1@acme.com").stdout
    assert "Enrollment refused" in shown
    assert "enrollment_refused" not in shown
    assert "Opted out" in shown
    text = cli.ok("enroll", "-s", "Outbound", "o1@acme.com").stdout
    assert "o1@acme.com" in text
    assert "opted out" in text


def test_R35_a_person_kept_out_by_an_exclusion_has_the_refusal_with_its_name(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com")
        world.exclusion("Current customers", "company", "company.domain in (acme.com)")
        world.sequence("Outbound", steps=STEPS)
    data = cli.json("enroll", "-s", "Outbound", "ann@acme.com")
    assert data["enrolled"] == 0
    [only] = data["refused"]
    assert only["code"] == "exclusion"
    assert only["exclusion"] == "Current customers"
    assert "Current customers" in only["reason"]
    [event] = _refusals(cli, "ann@acme.com")
    assert event["exclusion"] == "Current customers"
    assert event["sequence"] == "Outbound"
    shown = cli.ok("history", "ann@acme.com").stdout
    assert "Current customers" in shown


def test_R35_enrolling_many_refused_people_records_one_event_each(cli: Cli) -> None:
    with cli.seed() as world:
        for n in range(30):
            world.person(f"p{n}@acme.com", company="acme.com")
        world.person("free@globex.io", company="globex.io")
        world.exclusion("Current customers", "company", "company.domain in (acme.com)")
        world.sequence("Outbound", steps=STEPS)
    data = cli.json("enroll", "-s", "Outbound", "--filter", 'person.email ends with ".com"')
    assert data["refused_total"] == 30
    e = t.events
    count = cli.scalar(
        sa.select(sa.func.count()).where(
            e.c.kind == "enrollment_refused", e.c.exclusion_id.is_not(None)
        )
    )
    assert count == 30


def test_R35_the_company_cap_reached_within_one_batch_is_the_reason(cli: Cli) -> None:
    with cli.seed() as world:
        world.ruleset("One per company", max_active_per_company=1)
        world.person("a@acme.com", company="acme.com")
        world.person("b@acme.com", company="acme.com")
        world.sequence("Outbound", ruleset="One per company", steps=STEPS)
    data = cli.json("enroll", "-s", "Outbound", "a@acme.com", "b@acme.com")
    assert data["enrolled"] == 1
    assert [r["code"] for r in data["refused"]] == ["company_cap"]
    assert data["refused"][0]["reason"] == "company cap reached"


def test_R35_an_audience_enrollment_records_a_refusal_once_not_at_every_run(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person("bob@globex.io", company="globex.io", title="CTO")
        world.exclusion("Current customers", "company", "company.domain in (acme.com)")
        world.audience("CTOs", filter='person.title contains "CTO"')
        world.sequence("Outbound", audience="CTOs", steps=STEPS)
    cli.ok("sequence", "refresh", "Outbound")
    cli.ok("sequence", "refresh", "Outbound")
    [event] = _refusals(cli, "ann@acme.com")
    assert event["exclusion"] == "Current customers"
    assert event["detail"] == {"source": "audience"}
    # bob was enrolled by the first run; the second asks about him again: no refusal
    assert not _refusals(cli, "bob@globex.io")
