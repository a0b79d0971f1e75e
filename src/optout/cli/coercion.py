"""Option and argument values checked without pydantic where the check is plain.

Typer checks every value a command is given with a pydantic TypeAdapter built on first
use: importing pydantic and building one adapter takes about 0.2 s of CPU on a small
machine, more than a quick command such as `optout explain` spends on its own work. Most
of optout's options are plain text, flags, whole numbers, lists of text or one of a few
choices, whose check is simple: `plain_first` answers those itself, with the value Typer
would give, and hands anything else (and any value it does not take as it is: a number
written oddly, a value outside its bounds, a word that is not a choice) to Typer's own
check, so every message and every result stays Typer's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any, Final

import typer.core
from typer._click import Context
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import choice_coercion_annotation, coerce_cli_choice
from typer.core import _TyperParameter

# A whole number as people write one; anything else goes to Typer.
_WHOLE_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")


class _Unsure:
    """The plain check cannot answer: Typer's own check does."""


UNSURE: Final = _Unsure()


@dataclass(frozen=True)
class PlainRuntimeParam(RuntimeParam):
    """A value checked here when it is plain, else by Typer's adapter (built only then)."""

    descriptor: TypeDescriptor

    @cached_property
    def typers(self) -> RuntimeParam:
        return build_runtime_param(self.descriptor)

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        checked = plain_value(self.descriptor, value, ctx)
        if checked is UNSURE:
            return self.typers._coerce_value(value, param=param, ctx=ctx)
        return checked


def plain_value(descriptor: TypeDescriptor, value: Any, ctx: Context | None = None) -> Any:
    """The value as Typer's check would give it, or UNSURE."""
    annotation = descriptor.annotation
    info = descriptor.parameter_info
    if annotation is str:
        return value if isinstance(value, str) else UNSURE
    if annotation is bool:
        return value if isinstance(value, bool) else UNSURE
    if annotation is int:
        number = _whole_number(value)
        if number is None or info.clamp:
            return UNSURE
        if (info.min is not None and number < info.min) or (
            info.max is not None and number > info.max
        ):
            return UNSURE
        return number
    if annotation == list[str]:
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return list(value)
        return UNSURE
    choices = choice_coercion_annotation(annotation, info)
    if choices is not None and all(isinstance(choice, Enum) for choice in choices[0]):
        try:
            return coerce_cli_choice(value, choices=choices[0], case_sensitive=choices[1], ctx=ctx)
        except ValueError:
            return UNSURE
    return UNSURE


def _whole_number(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    return None


def handles(descriptor: TypeDescriptor) -> bool:
    """Whether the plain check may answer for this parameter (files and parsers: never)."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None:
        return False
    annotation = descriptor.annotation
    if annotation in (str, bool, int) or annotation == list[str]:
        return True
    choices = choice_coercion_annotation(annotation, info)
    return choices is not None and all(isinstance(choice, Enum) for choice in choices[0])


def plain_first(descriptor: TypeDescriptor) -> RuntimeParam:
    """What checks a parameter's values: the plain check first where it applies."""
    if handles(descriptor):
        return PlainRuntimeParam(
            annotation=descriptor.annotation,
            parameter_info=descriptor.parameter_info,
            descriptor=descriptor,
        )
    return build_runtime_param(descriptor)


def install() -> None:
    """Have Typer's parameters check their values with `plain_first`."""
    typer.core.build_runtime_param = plain_first  # type: ignore[attr-defined]
