"""Commands import only what they use: `optout --help` and `optout explain` run without
the web stack, and the help lists every command with its own first line.

What is imported is asserted in a fresh interpreter (the test process has imported
everything already); how long a start takes is measured in bench/cli_start.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from optout.cli import app
from optout.cli.registry import COMMANDS
from tests.cli.conftest import STEPS, Cli

WEB_STACK = {"fastapi", "starlette", "uvicorn", "jinja2"}
# Libraries the list of commands has no use for: the database, the checks of option
# values (Typer's pydantic), the tables of command output, encryption, address checks.
HEAVY = WEB_STACK | {
    "sqlalchemy",
    "alembic",
    "psycopg",
    "pydantic",
    "pydantic_core",
    "rich",
    "cryptography",
    "email_validator",
}

_PROBE = """
import gc, json, sys
from optout.cli import main
sys.argv = ["optout", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
collector = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
print(json.dumps({"code": code, "modules": sorted(sys.modules), "gc": collector}), file=sys.stderr)
"""

# What `optout explain` on SQLite has no use for, by module: PostgreSQL's dialect (the
# tables name no PostgreSQL argument until a PostgreSQL engine is made), the template
# engine of email steps, the services of the commands beside it.
NOT_FOR_EXPLAIN_ON_SQLITE = {
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.orm",
    "psycopg",
    "optout.mail.templates",
    "markupsafe",
    "optout.cli.people",
    "optout.services.suppression.optouts",
}


# What `optout explain` has no use for on either database, by top-level package: the
# address checks of email-validator and IDNA (a plain address is checked without them,
# `optout.normalize`).
NOT_FOR_EXPLAIN = {"email_validator", "idna"}
# ... and by module: what changes exclusions, personas, sequences' mailboxes and people's
# activities (explain only reads them; a person with no active enrollment needs no mailbox).
NOT_FOR_EXPLAIN_MODULES = {
    "optout.crypto",
    "optout.services.activities",
    "optout.services.exclusions.in_sequences",
    "optout.services.exclusions.preview",
    "optout.services.exclusions.saves",
    "optout.services.mailboxes.imap_logins",
    "optout.services.mailboxes.sender_mailboxes",
    "optout.services.sequences.personas",
}


def _imported(args: list[str], **env: str) -> tuple[int, set[str], str]:
    """Run `optout ARGS` in a new interpreter: its exit code, the top-level packages it
    imported, and what it printed."""
    code, modules, out = _imported_modules(args, **env)
    return code, {m.split(".")[0] for m in modules}, out


def _imported_modules(
    args: list[str], *, columns: str | None = "200", **env: str
) -> tuple[int, set[str], str]:
    """Run `optout ARGS` in a new interpreter (its output read by no terminal, COLUMNS set
    unless `columns` is None): its exit code, every module it imported, and what it
    printed."""
    base = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    if columns is not None:
        base["COLUMNS"] = columns
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), done.stdout


def _collector_after(args: list[str], **env: str) -> dict[str, Any]:
    """Run `optout ARGS` in a new interpreter: the garbage collector's state after it."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])["gc"]
    return report


def test_help_imports_no_database_and_no_web_code() -> None:
    code, modules, out = _imported(["--help"])
    assert code == 0
    assert "explain" in out
    assert "exclusion" in out
    assert not modules & HEAVY, sorted(modules & HEAVY)


def test_R29_explain_imports_no_web_code(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com")
        world.sequence("Outbound", steps=STEPS)
    code, imported, out = _imported_modules(
        ["explain", "ann@acme.com", "--sequence", "Outbound"], **cli.env()
    )
    modules = {m.split(".")[0] for m in imported}
    assert code == 0
    assert out.startswith("ALLOWED")
    # Only the explain command's own module, not those of the commands beside it.
    assert "optout.cli.explain" in imported
    assert not imported & {"optout.cli.people", "optout.services.suppression.optouts"}
    assert not modules & WEB_STACK
    # The schema is current, so Alembic is not even loaded to say so.
    assert "alembic" not in modules
    # Nor is the encryption of stored secrets, which explain never reads.
    assert "cryptography" not in modules
    # Its text and flags are checked without pydantic (`optout.cli.coercion`).
    assert not modules & {"pydantic", "pydantic_core"}
    assert not modules & NOT_FOR_EXPLAIN, sorted(modules & NOT_FOR_EXPLAIN)
    assert not imported & NOT_FOR_EXPLAIN_MODULES, sorted(imported & NOT_FOR_EXPLAIN_MODULES)
    if cli.url.startswith("sqlite"):
        assert not imported & NOT_FOR_EXPLAIN_ON_SQLITE, sorted(
            imported & NOT_FOR_EXPLAIN_ON_SQLITE
        )
    else:
        assert "sqlalchemy.dialects.postgresql" in imported


def test_R29_explain_read_by_no_terminal_imports_no_rich(cli: Cli) -> None:
    """Piped, or read by a script, explain lays its answer out itself
    (`optout.cli.plain_layout`); rich is loaded only for a terminal, or when COLUMNS,
    FORCE_COLOR or TTY_COMPATIBLE ask for its layout."""
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com")
        world.sequence("Outbound", steps=STEPS)
    args = ["explain", "ann@acme.com", "--sequence", "Outbound"]
    env = {key: value for key, value in cli.env().items() if key != "COLUMNS"}
    code, imported, out = _imported_modules(args, columns=None, **env)
    assert code == 0
    assert out.startswith("ALLOWED")
    assert "Checks in precedence order" in out
    assert "rich" not in {m.split(".")[0] for m in imported}
    code, imported, rich_out = _imported_modules(args, columns=None, FORCE_COLOR="", **env)
    assert code == 0
    assert "rich.table" in imported
    assert rich_out == out


def test_R29_a_command_collects_garbage_again_once_it_is_loaded(cli: Cli) -> None:
    """Start-up runs without the cyclic garbage collector (`optout.cli.collector`); the
    command itself, and a long-running one above all, runs with it, and what start-up
    built is frozen out of its collections."""
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com")
        world.sequence("Outbound", steps=STEPS)
    after = _collector_after(["explain", "ann@acme.com", "--sequence", "Outbound"], **cli.env())
    assert after["enabled"] is True
    assert after["frozen"] > 10_000
    # Help alone loads no command: the collector is as it was, on.
    assert _collector_after(["--help"])["enabled"] is True


def test_every_command_in_the_help_is_the_command_that_runs() -> None:
    """The help's list (from the registry, nothing imported) names every command that
    exists, each with the first line of its own help."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    ctx = typer.Context(root)
    names = root.list_commands(ctx)
    assert names == list(COMMANDS)
    for name in names:
        command: Any = root.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(10_000) == COMMANDS[name].summary, name
    registered = {info.name for info in app.registered_groups} | {
        info.name or typer.main.get_command_name(info.callback.__name__)
        for info in app.registered_commands
        if info.callback is not None
    }
    assert registered == set(COMMANDS)


@pytest.mark.parametrize("typo", ["explian", "exclusoin"])
def test_a_mistyped_command_suggests_the_right_one(typo: str) -> None:
    result = CliRunner().invoke(app, [typo])
    assert result.exit_code == 2
    assert "Did you mean" in result.output


def test_every_module_that_adds_a_command_is_in_the_registry() -> None:
    """A module that adds a command to the root but is missing from the registry would
    never be imported, and its command would silently not exist."""
    import optout.cli

    folder = Path(optout.cli.__file__).parent
    adding = {
        f"optout.cli.{path.stem}"
        for path in folder.glob("*.py")
        if re.search(r"^@app\.command|^app\.add_typer\(", path.read_text(), re.MULTILINE)
    }
    assert adding
    assert adding <= {entry.module for entry in COMMANDS.values()}
