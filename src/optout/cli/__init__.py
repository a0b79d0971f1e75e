"""The `optout` command line (Typer + rich): parse, call services in one transaction,
format. `main` is the console script declared in pyproject.toml.

Each command's module is imported when the command is used, not here (see
`optout.cli.registry`): `optout --help` starts without the database layer or the web app.
"""

from __future__ import annotations

from optout.cli import collector

with collector.held():  # Typer and the root command: allocations, no garbage
    from optout.cli.app import app


def main() -> None:
    with collector.held():  # until the command is loaded (`OptoutGroup.resolve_command`)
        app()


__all__ = ["app", "main"]
