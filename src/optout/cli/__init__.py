"""The `optout` command line (Typer + rich): parse, call services in one transaction,
format. `main` is the console script declared in pyproject.toml."""

from __future__ import annotations

# Importing the command modules registers their commands on the root app.
from optout.cli import (  # noqa: F401
    accounts,
    audiences,
    crm,
    exclusions,
    imports,
    in_doubt,
    inbound,
    people,
    sequences,
    serve,
    worker,
    workspace,
)
from optout.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
