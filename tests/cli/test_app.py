"""The root command: init, global options, migrate on start, errors and exit codes."""

from __future__ import annotations

import sqlalchemy as sa

from optout.db import tables as t
from optout.db.engine import create_engine
from tests.cli.conftest import Cli


def test_cli_init_migrates_and_creates_the_workspace_once(cli: Cli) -> None:
    first = cli.json("init", "--workspace", "north", "--name", "North team")
    assert first["workspace"] == "north"
    assert first["created"] is True
    again = cli.ok("init", "-w", "north").stdout
    assert "Workspace exists already: 'north' (North team)" in again
    ws = t.workspaces
    assert cli.scalar(sa.select(ws.c.name).where(ws.c.slug == "north")) == "North team"
    bad = cli.run("init", "--workspace", "Bad Slug!")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: workspace slug 'Bad Slug!'")


def test_cli_global_workspace_option_and_missing_workspace(cli: Cli) -> None:
    cli.ok("init", "--workspace", "north")
    missing = cli.run("opt-out", "a@acme.com", "--reason", "x")  # OPTOUT_WORKSPACE=acme-sales
    assert missing.exit_code == 1
    assert missing.stderr.startswith(
        "error: no workspace 'acme-sales'; create it with `optout init"
    )
    cli.ok("--workspace", "north", "opt-out", "a@acme.com", "--reason", "x")
    env_selected = cli.run("opt-out", "b@acme.com", "--reason", "x", OPTOUT_WORKSPACE="north")
    assert env_selected.exit_code == 0
    s = t.suppressions
    assert cli.scalar(sa.select(sa.func.count()).select_from(s)) == 2


def test_cli_actor_comes_from_the_option_or_the_environment(cli: Cli) -> None:
    cli.ok("init")
    cli.ok("--actor", "dana@team", "opt-out", "a@acme.com", "--reason", "x")
    s = t.suppressions
    assert cli.scalar(sa.select(s.c.actor).where(s.c.email == "a@acme.com")) == "dana@team"


def test_cli_help_and_usage_errors(cli: Cli) -> None:
    top = cli.ok("--help").stdout
    for command in ("init", "demo", "opt-out", "clear-opt-out", "explain", "history"):
        assert command in top
    for group in ("exclusion", "audience", "import"):
        assert group in top
    for command in ("add", "list", "show", "preview", "enable", "disable", "edit"):
        assert command in cli.ok("exclusion", "--help").stdout
    assert "--now" in cli.ok("explain", "--help").stdout  # for reproducible scripts
    unknown = cli.run("frobnicate")
    assert unknown.exit_code == 2


def test_cli_unreachable_database_is_one_line_and_exit_1(cli: Cli) -> None:
    result = cli.run(
        "init", OPTOUT_DATABASE_URL="postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2"
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot use the database postgresql")
    assert "secret" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_cli_database_from_an_earlier_schema_build_is_one_clear_error(cli: Cli) -> None:
    cli.ok("init")
    engine = create_engine(cli.url)
    with engine.begin() as db:
        db.execute(sa.text("DROP TABLE events"))
    engine.dispose()
    result = cli.run("exclusion", "list")
    assert result.exit_code == 1
    assert "made by an earlier build of optout's schema (missing tables: events)" in result.stderr
    assert len(result.stderr.splitlines()) == 1
