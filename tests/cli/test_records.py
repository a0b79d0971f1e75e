"""What the pages and the API create, the command line creates too, each with --json: a
person, a company, a persona, an audience and an audience's switch-off; and one person's
enrollments and emails still to go (R26, R30, R35)."""

from __future__ import annotations

from tests.cli.conftest import STEPS, Cli


def test_R26_person_show_gives_the_status_in_a_sequence_and_the_queued_emails(cli: Cli) -> None:
    with cli.seed() as world:
        ann = world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person("bob@acme.com", company="acme.com")
        outbound = world.sequence("Outbound", steps=STEPS)
        world.sequence("Later", steps=STEPS)
        world.enroll(outbound, [ann])
    data = cli.json("person", "show", "ANN@acme.com", "--sequence", "Outbound")
    assert data["person"]["email"] == "ann@acme.com"
    assert data["person"]["company_domain"] == "acme.com"
    assert data["status"] == "not_started"
    assert [e["sequence"] for e in data["enrollments"]] == ["Outbound"]
    [email] = data["queued_emails"]
    assert email["sequence"] == "Outbound"
    assert email["status"] == "queued"
    assert email["subject"] == STEPS[0].subject
    other = cli.json("person", "show", "ann@acme.com", "--sequence", "Later")
    assert other["status"] == "not_enrolled"
    assert other["queued_emails"] == []
    shown = cli.ok("person", "show", "ann@acme.com").stdout
    assert "Outbound" in shown
    assert "Emails not sent yet" in shown
    cli.ok("opt-out", "ann@acme.com", "--reason", "asked")
    after = cli.json("person", "show", "ann@acme.com", "--sequence", "Outbound")
    assert after["person"]["opted_out"] is True
    assert after["status"] == "opted_out"
    assert after["queued_emails"] == []
    missing = cli.run("person", "show", "nobody@acme.com")
    assert missing.exit_code == 1
    assert missing.stderr == "error: no person with address nobody@acme.com\n"


def test_R35_person_add_and_company_add_use_the_same_rules_as_the_api(cli: Cli) -> None:
    cli.ok("init")
    company = cli.json("company", "add", "Acme.com", "--name", "Acme", "--field", "tier=gold")
    assert company["domain"] == "acme.com"
    assert company["fields"] == {"tier": "gold"}
    assert company["people"] == 0
    person = cli.json(
        "person", "add", "ann@acme.com", "--first-name", "Ann", "--title", "CTO",
        "--field", "industry=Software",
    )  # fmt: skip
    assert person["company_domain"] == "acme.com"  # joined the company of her domain
    assert person["fields"] == {"industry": "Software"}
    again = cli.run("company", "add", "acme.com")
    assert again.exit_code == 1
    assert "exists already" in again.stderr
    bad_field = cli.run("person", "add", "bob@acme.com", "--field", "industry")
    assert bad_field.exit_code == 2
    assert "name=value" in bad_field.stderr
    bad_address = cli.run("person", "add", "a@@b")
    assert bad_address.exit_code == 2
    unknown_company = cli.run("person", "add", "cat@globex.io", "--company", "globex.io")
    assert unknown_company.exit_code == 1
    people = cli.json("person", "show", "ann@acme.com")
    assert people["person"]["title"] == "CTO"


def test_R30_persona_audience_and_switch_off_from_the_command_line(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com", title="VP Engineering")
        world.person("bob@globex.io", company="globex.io", title="Engineering Intern")
        world.person("cat@initech.com", company="initech.com", title="Head of Sales")
        world.exclusion("Acme deal", "company", "company.domain in (acme.com)")
        world.exclusion(
            "Customers", "company", "company.domain in (initech.com)", exclude_from_sequences=True
        )
    persona = cli.json(
        "persona", "add", "Engineers", "--include", "engineering", "--exclude", "intern"
    )
    assert persona["include_keywords"] == ["engineering"]
    assert [p["name"] for p in cli.json("persona", "list")] == ["Engineers"]
    audience = cli.json("audience", "add", "Eng leaders", "--persona", "Engineers")
    assert audience["size"] == 1
    assert audience["persona"] == "Engineers"
    switched = cli.json("audience", "switch-off", "Eng leaders", "Acme deal")
    states = {e["name"]: e["state"] for e in switched["exclusions"]}
    assert states["Acme deal"] == "switched_off"
    assert states["Customers"] == "enforced"
    enforced = cli.run("audience", "switch-off", "Eng leaders", "Customers")
    assert enforced.exit_code == 1
    assert "every sequence" in enforced.stderr
    back = cli.json("audience", "switch-on", "Eng leaders", "Acme deal")
    assert {e["name"]: e["state"] for e in back["exclusions"]}["Acme deal"] == "applies"
    duplicate = cli.run("persona", "add", "Engineers")
    assert duplicate.exit_code == 1
    bad_filter = cli.run("audience", "add", "Broken", "--filter", "person.nope = 1")
    assert bad_filter.exit_code == 2
