"""Every option and argument of every command gives the same value, or the same error, when
its plain check answers (`optout.cli.coercion`) as when Typer's own pydantic check does."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from enum import Enum
from typing import Any

import pytest
import typer
import typer.main
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param
from typer.core import TyperGroup, _TyperParameter
from typer.testing import CliRunner

from optout.cli import app, coercion
from optout.cli.registry import COMMANDS
from tests.cli.conftest import Cli

SAMPLES: tuple[Any, ...] = (
    "acme.com",
    "",
    "  spaced  ",
    "Ünïcode",
    "12",
    "0",
    "-3",
    "007",
    " 5",
    "1e3",
    "1_000",
    "12.0",
    "abc",
    "99999999999999999999",
    "100000",
    5,
    True,
    False,
    b"bytes",
    ("a", "b"),
    ["a"],
    "company",
    "PEOPLE",
    "hubspot",
    "admin",
    "nope",
)


def _parameters() -> Iterator[tuple[str, Any, _TyperParameter]]:
    for module in {entry.module for entry in COMMANDS.values()}:
        importlib.import_module(module)
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    stack: list[tuple[str, Any]] = [("optout", root)]
    while stack:
        path, command = stack.pop()
        if isinstance(command, TyperGroup):
            ctx = typer.Context(command)
            for name in command.list_commands(ctx):
                stack.append((f"{path} {name}", command.get_command(ctx, name)))
        for param in command.params:
            if isinstance(param, _TyperParameter):
                yield path, command, param


def _outcome(check: Any, value: Any, param: _TyperParameter, ctx: typer.Context) -> Any:
    try:
        result = check.coerce(value, param=param, ctx=ctx)
    except BadParameter as exc:
        return ("error", exc.message)
    return ("value", type(result), result)


def test_the_plain_check_gives_what_typer_gives_for_every_parameter() -> None:
    compared = plain = 0
    for path, command, param in _parameters():
        descriptor = param.type_descriptor
        ours = coercion.plain_first(descriptor)
        if not isinstance(ours, coercion.PlainRuntimeParam):
            continue
        plain += 1
        typers = build_runtime_param(descriptor)
        ctx = typer.Context(command)
        for value in SAMPLES:
            expected = _outcome(typers, value, param, ctx)
            assert _outcome(ours, value, param, ctx) == expected, (path, param.name, value)
            compared += 1
    # Most parameters are plain: text, flags, whole numbers, lists of text, choices.
    assert plain > 250
    assert compared == plain * len(SAMPLES)


def test_the_plain_check_leaves_files_and_odd_numbers_to_typer() -> None:
    kinds = {
        type(coercion.plain_first(param.type_descriptor)).__name__
        for _, _, param in _parameters()
        if param.type_descriptor.annotation is float
    }
    assert kinds
    assert "PlainRuntimeParam" not in kinds
    for _, _, param in _parameters():
        descriptor = param.type_descriptor
        if descriptor.annotation is int:
            assert coercion.plain_value(descriptor, "1e3") is coercion.UNSURE
        if isinstance(descriptor.annotation, type) and issubclass(descriptor.annotation, Enum):
            assert coercion.plain_value(descriptor, "nope") is coercion.UNSURE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mailbox", "add", "a@acme.com", "--daily-limit", "lots"], "--daily-limit"),
        (["exclusion", "preview", "--level", "teams", "--filter", "x = 1"], "'teams'"),
    ],
)
def test_a_bad_value_is_refused_as_typer_refuses_it(
    cli: Cli, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, args, env=cli.env())
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output
    assert message in result.output
