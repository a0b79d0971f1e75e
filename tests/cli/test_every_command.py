"""Every command of the command line keeps the README's promises: `--json` for scripts,
`--now` where the clock decides, and help text that prints exactly as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from optout.cli import app
from optout.services import workspaces
from tests.cli.conftest import Cli
from tests.user_text import internal_words

# Commands that decide or change state at a moment in time.
CLOCKED = {
    "opt-out",
    "clear-opt-out",
    "explain",
    "enroll",
    "unenroll",
    "worker",
    "exclusion add",
    "exclusion edit",
    "exclusion enable",
    "exclusion disable",
    "exclusion show",
    "exclusion preview",
    "import people",
    "import companies",
    "import exclusion-list",
    "inbound process",
    "in-doubt release",
    "in-doubt cancel",
    "in-doubt policy",
    "sequence create",
    "sequence pause",
    "sequence resume",
    "sequence archive",
    "sequence refresh",
    "ruleset create",
    "crm sync",
}


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path
        return
    for name, sub in sorted(subcommands.items()):
        yield from _commands(sub, (*path, name))


COMMANDS = sorted(_commands(typer.main.get_command(app)))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (path, result.output)
    return result.output


def test_the_walk_finds_every_group_and_command() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert len(names) >= 45
    assert {"ruleset create", "sequence create", "serve", "api-key revoke"} <= names
    assert names >= CLOCKED


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_takes_json_and_prints_its_help_as_written(path: tuple[str, ...]) -> None:
    text = _help(path)
    options = set(re.findall(r"--[a-z][a-z-]*", text))
    assert "--json" in options
    if " ".join(path) in CLOCKED:
        assert "--now" in options
    assert "[]" not in text  # brackets swallowed as markup
    assert not internal_words(text), "help names a rule id or an internal check name"


def _groups(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return
    yield path
    for name, sub in sorted(subcommands.items()):
        yield from _groups(sub, (*path, name))


@pytest.mark.parametrize("path", sorted(_groups(typer.main.get_command(app))), ids=" ".join)
def test_every_command_group_helps_in_the_users_words(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert "Usage:" in text
    assert not internal_words(text), "help names a rule id or an internal check name"


def test_help_shows_literal_brackets() -> None:
    text = _help(("sequence", "create"))
    assert "[[steps]]" in text


def test_R12_settings_switch_company_creation_from_email_domains(cli: Cli) -> None:
    cli.ok("init")
    assert cli.json("settings")["create_companies_from_email_domain"] is True
    assert (
        cli.json("settings", "--no-create-companies")["create_companies_from_email_domain"] is False
    )
    shown = cli.ok("settings").stdout
    assert "create companies from email domain: False" in shown


def test_R22_cli_preview_names_the_people_at_the_domain_it_misses(cli: Cli) -> None:
    with cli.seed() as world:
        workspaces.set_company_creation(world.db, workspace_id=world.ws, enabled=False)
        world.person("ann@acme.com")
    shown = cli.ok(
        "exclusion", "preview", "--level", "company", "--filter", "company.domain in (acme.com)"
    ).stdout
    assert "this filter matches nobody now" in shown
    assert "1 people have an email at acme.com but are not reached" in shown
    assert "not reached: ann@acme.com (no company)" in shown
    data = cli.json(
        "exclusion", "preview", "--level", "company", "--filter", "company.domain in (acme.com)"
    )
    assert data["preview"]["unreached_at_domains"]["without_company"] == 1
