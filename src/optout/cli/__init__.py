"""The `optout` command line (Typer + rich): parse, call services in one transaction,
format. `main` is the console script declared in pyproject.toml."""

from __future__ import annotations

# Importing the command modules registers their commands on the root app.
from optout.cli import audiences, exclusions, imports, people, workspace  # noqa: F401
from optout.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
