"""`optout exclusion ...`: add, edit, enable/disable, list, show, preview (R13, R18, R22, R34)."""

from __future__ import annotations

import pytest

from tests.cli.conftest import STEPS, Cli
from tests.user_text import RAW_FIELD_PATH, admin_unfamiliar


def _seed_people(cli: Cli, *, at_acme: int = 3, elsewhere: int = 7) -> None:
    with cli.seed() as world:
        world.company("acme.com", "Acme")
        world.company("acme.co.uk", "Acme UK")
        for i in range(at_acme):
            world.person(f"p{i}@acme.com", company="acme.com", title="Engineer")
        for i in range(elsewhere):
            world.person(f"q{i}@globex.io", company="globex.io", title="Engineer")
        world.sequence("Outbound", steps=STEPS)


def test_R22_cli_add_needs_confirm_for_mass_exclusion(cli: Cli) -> None:
    _seed_people(cli, at_acme=5, elsewhere=5)
    args = [
        "exclusion",
        "add",
        "Acme",
        "--level",
        "company",
        "--filter",
        "company.domain = acme.com",
    ]
    refused = cli.run(*args)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: this save needs confirmation: it matches 5 of 10")
    assert "re-run with --confirm" in refused.stderr
    # the preview and the reasons are shown before anything is saved
    assert "Not saved: 'Acme' needs confirmation." in refused.stdout
    assert "5 of 10 (50.0%)" in refused.stdout
    assert "needs --confirm: it matches 5 of 10 people (50%" in refused.stdout
    assert cli.json("exclusion", "list") == []
    as_json = cli.run(*args, "--json")
    assert as_json.exit_code == 2
    assert '"saved": false' in as_json.stdout
    assert '"needs_confirmation": true' in as_json.stdout

    saved = cli.ok(*args, "--confirm").stdout
    assert "Saved 'Acme' (company level)" in saved
    assert [x["name"] for x in cli.json("exclusion", "list")] == ["Acme"]


def test_R22_cli_negative_only_filter_gets_a_warning(cli: Cli) -> None:
    _seed_people(cli, at_acme=1, elsewhere=1)
    out = cli.ok(
        "exclusion", "preview", "--level", "people", "--filter", "person.email != a@acme.com"
    ).stdout
    assert "warning: every condition is negative" in out


def test_R34_cli_bad_filter_exit_code_2_with_position(cli: Cli) -> None:
    _seed_people(cli)
    text = "company.domain in (acme.com, foo.co.uk"
    result = cli.run("exclusion", "add", "X", "--level", "company", "--filter", text)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "error: at column 39: expected ',' or ')' in the list, found the end of the filter"
    )
    assert lines[1] == f"  {text}"
    assert lines[2] == "  " + " " * 38 + "^"
    assert result.stdout == ""

    unknown = cli.run("exclusion", "preview", "--level", "people", "--filter", "person.shoe = 4")
    assert unknown.exit_code == 2
    assert "unknown field 'person.shoe'" in unknown.stderr
    wrong_level = cli.run(
        "exclusion",
        "add",
        "Deals",
        "--level",
        "people",
        "--filter",
        "opportunity.is_closed = false",
    )
    assert wrong_level.exit_code == 2
    assert "cannot be used in a people-level filter" in wrong_level.stderr
    bad_domain = cli.run(
        "exclusion", "add", "D", "--level", "company", "--filter", "company.domain in (edu)"
    )
    assert bad_domain.exit_code == 2
    assert "'edu' is not a domain (a domain has at least one dot" in bad_domain.stderr
    assert 'ends with ".edu"' in bad_domain.stderr
    assert cli.json("exclusion", "list") == []


def test_R18_cli_preview_lists_near_miss_domains(cli: Cli) -> None:
    _seed_people(cli)
    out = cli.ok(
        "exclusion", "preview", "--level", "company", "--filter", "company.domain in (acme.com)"
    ).stdout
    assert "people matched     3 of 10 (30.0%)" in out
    assert "near miss: acme.com is listed; acme.co.uk is in your data and is NOT matched" in out
    assert "p0@acme.com" in out  # the sample
    data = cli.json(
        "exclusion", "preview", "--level", "company", "--filter", "company.domain in (acme.com)"
    )
    assert data["preview"]["near_misses"] == [
        {"listed": "acme.com", "present": "acme.co.uk", "kind": "suffix"}
    ]
    assert data["preview"]["companies_matched"] == 1


def test_R13_cli_preview_and_save_with_unenroll(cli: Cli) -> None:
    with cli.seed() as world:
        people = [world.person(f"p{i}@acme.com", company="acme.com") for i in range(2)]
        people += [world.person(f"q{i}@globex.io", company="globex.io") for i in range(8)]
        world.enroll(world.sequence("Outbound", steps=STEPS), people)
    flt = ["--level", "company", "--filter", "company.domain = acme.com"]
    counted = cli.json("exclusion", "preview", *flt, "--unenroll-existing-on-save")
    assert counted["preview"]["enrollments_removed"] == 2
    assert counted["preview"]["emails_cancelled"] == 2
    off = cli.ok("exclusion", "preview", *flt).stdout
    assert "nobody (unenroll on save is off)" in off
    saved = cli.json("exclusion", "add", "Acme", *flt, "--unenroll-existing-on-save")
    assert saved["removed"] == {"enrollments_ended": 2, "emails_cancelled": 2}
    assert saved["exclusion"]["unenroll_existing_on_save"] is True


def test_cli_exclusion_show_list_edit_enable_disable(cli: Cli) -> None:
    _seed_people(cli)
    cli.ok(
        "exclusion",
        "add",
        "CTOs",
        "--level",
        "people",
        "--filter",
        "person.title = cto",
        "--exclude-from-sequences",
        "--disabled",
    )
    shown = cli.json("exclusion", "show", "CTOs")
    assert shown["exclusion"] == {
        "id": shown["exclusion"]["id"],
        "name": "CTOs",
        "level": "people",
        "filter": "person.title = cto",
        "enabled": False,
        "exclude_from_sequences": True,
        "unenroll_existing_on_save": False,
    }
    text = cli.ok("exclusion", "show", "CTOs").stdout
    assert "filter: person.title = cto" in text
    assert "disabled · exclude from sequences on · unenroll on save off" in text

    edited = cli.json(
        "exclusion",
        "edit",
        "CTOs",
        "--filter",
        "person.title = engineer",
        "--name",
        "Engineers",
        "--no-exclude-from-sequences",
    )
    assert edited["exclusion"]["filter"] == "person.title = engineer"
    assert edited["exclusion"]["exclude_from_sequences"] is False
    assert edited["exclusion"]["enabled"] is False
    # enabling a rule that matches everyone needs confirmation too (R22)
    refused = cli.run("exclusion", "enable", "Engineers")
    assert refused.exit_code == 2
    assert "needs confirmation" in refused.stderr
    assert cli.json("exclusion", "enable", "Engineers", "--confirm")["exclusion"]["enabled"]
    listed = cli.json("exclusion", "list")
    assert listed[0]["people_matched"] == 10
    table = cli.ok("exclusion", "list").stdout
    assert "Engineers" in table
    assert "person.title = engineer" in table
    assert cli.json("exclusion", "disable", "Engineers")["exclusion"]["enabled"] is False
    saved_preview = cli.json("exclusion", "preview", "Engineers")
    assert saved_preview["exclusion"]["name"] == "Engineers"


def test_R22_cli_level_change_must_fit_the_filter(cli: Cli) -> None:
    _seed_people(cli)
    cli.ok("exclusion", "add", "CTOs", "--level", "people", "--filter", "person.title = cto")
    result = cli.run("exclusion", "edit", "CTOs", "--level", "company")
    assert result.exit_code == 2
    assert "does not fit the company level" in result.stderr
    assert cli.json("exclusion", "show", "CTOs")["exclusion"]["level"] == "people"


def test_cli_exclusion_errors_name_the_problem(cli: Cli) -> None:
    _seed_people(cli)
    missing = cli.run("exclusion", "show", "Nope")
    assert (missing.exit_code, missing.stderr) == (1, "error: no exclusion named 'Nope'\n")
    cli.ok("exclusion", "add", "CTOs", "--level", "people", "--filter", "person.title = cto")
    duplicate = cli.run(
        "exclusion", "add", "CTOs", "--level", "people", "--filter", "person.title = cfo"
    )
    assert duplicate.exit_code == 1
    assert "exists already" in duplicate.stderr
    neither = cli.run("exclusion", "preview")
    assert neither.exit_code == 2
    assert "--level and --filter" in neither.stderr
    bad_level = cli.run("exclusion", "add", "Y", "--level", "team", "--filter", "person.title = x")
    assert bad_level.exit_code == 2


@pytest.mark.parametrize(
    ("filter", "words"),
    [
        ("person.shoe_size = 42", "the fields a filter can use are Email, Email domain"),
        ("company.domian in (acme.com)", "did you mean Company domain?"),
    ],
)
def test_R34_a_mistyped_field_is_answered_with_labels_not_field_paths(
    cli: Cli, filter: str, words: str
) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com")
    for command in ("preview", "add"):
        name = [] if command == "preview" else ["Mistyped"]
        result = cli.run("exclusion", command, *name, "--level", "people", "--filter", filter)
        assert result.exit_code == 2, result.output
        message = result.stderr
        assert f"unknown field '{filter.split()[0]}'" in message
        assert words in message
        # No field's path, quoted or not: the only dotted name is the one typed.
        assert RAW_FIELD_PATH.findall(message) == []
        assert admin_unfamiliar(message) == []
    assert cli.json("exclusion", "list") == []
