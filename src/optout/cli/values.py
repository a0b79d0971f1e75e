"""Service values as JSON for scripts (`--json`): no rich, so a command that prints JSON,
or lays its text out without rich (`optout.cli.plain_layout`), does not load it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

import typer


def plain(value: Any) -> Any:
    """A JSON-ready copy of service values (dataclasses, datetimes, tuples, sets)."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [plain(v) for v in items]
    if isinstance(value, Enum):
        return value.value
    return value


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(plain(data), indent=2, ensure_ascii=False))
