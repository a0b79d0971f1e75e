"""`optout audience ...`: sizes, and every exclusion's state for one audience (R16, R30)."""

from __future__ import annotations

from tests.cli.conftest import STEPS, Cli


def _seed(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person("bob@acme.com", company="acme.com", title="HR Intern")
        world.person("cat@globex.io", company="globex.io", title="Head of People")
        world.exclusion(
            "Customers", "company", "company.domain = acme.com", exclude_from_sequences=True
        )
        world.exclusion("No HR", "people", "person.title contains hr")
        world.exclusion("Personal", "people", "person.email_domain is personal")
        world.exclusion("Old rule", "people", "person.title = cfo", enabled=False)
        world.persona("No interns", exclude=["intern"])
        world.audience("People teams", "person.title contains any (hr, people)", "No interns")
        world.audience("Everyone")
        world.sequence("Intro", audience="People teams", steps=STEPS)
        from optout.services.sequences import audiences

        audiences.switch_off(
            world.db,
            workspace_id=world.ws,
            audience="People teams",
            exclusion="No HR",
            actor="test",
            now=world.now,
        )


def test_R30_cli_audience_exclusions(cli: Cli) -> None:
    _seed(cli)
    data = cli.json("audience", "exclusions", "People teams")
    states = {row["name"]: row["state"] for row in data["exclusions"]}
    assert states == {
        "Customers": "enforced",
        "No HR": "switched_off",
        "Personal": "applies",
        "Old rule": "disabled",
    }
    table = cli.ok("audience", "exclusions", "People teams").stdout
    assert "Exclusions for audience 'People teams'" in table
    assert "switched off by audience 'People teams'" in table
    assert "applies to every sequence; cannot be switched off" in table
    missing = cli.run("audience", "exclusions", "Nope")
    assert (missing.exit_code, missing.stderr) == (1, "error: no audience named 'Nope'\n")


def test_R24_cli_audience_list_with_sizes(cli: Cli) -> None:
    _seed(cli)
    rows = {row["name"]: row for row in cli.json("audience", "list")}
    assert rows["Everyone"]["size"] == 3
    assert rows["Everyone"]["filter"] is None
    # the persona keeps the intern out (R24)
    assert rows["People teams"]["size"] == 1
    assert rows["People teams"]["persona"] == "No interns"
    assert rows["People teams"]["exclusions_switched_off"] == 1
    assert rows["People teams"]["sequences"] == ["Intro"]
    table = cli.ok("audience", "list").stdout
    assert "People teams" in table
    assert "(everyone)" in table
