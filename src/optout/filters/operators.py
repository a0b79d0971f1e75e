"""The operator table: each operator's SQL form and Python form, side by side.

Both forms are two-valued: a missing value (NULL / None) makes a positive
operator false and a negative one true, so `not` means the same in SQL and in
Python. Text values arrive already case-folded by the compiler and evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from optout.filters.fields import FieldType
from optout.filters.sqlfunc import in_list
from optout.normalize import free_mail_domains


class Arg(StrEnum):
    NONE = "none"  # is_empty
    ONE = "one"  # eq "x"
    LIST = "list"  # in (a, b)
    DAYS = "days"  # within_last_days 30


@dataclass(frozen=True)
class Context:
    """What an operator may need besides the column and the value."""

    now: datetime


SqlForm = Callable[[ColumnElement[Any], Any, Context], ColumnElement[bool]]
PyForm = Callable[[Any, Any, Context], bool]


@dataclass(frozen=True)
class Operator:
    name: str
    syntax: str  # how the text syntax spells it
    arg: Arg
    types: frozenset[FieldType]
    sql: SqlForm
    py: PyForm
    description: str
    # Set-membership operators compare canonical values; pattern operators compare fragments.
    pattern: bool = False


_TEXTUAL = frozenset({FieldType.TEXT, FieldType.EMAIL, FieldType.DOMAIN})
_ORDERED = frozenset({FieldType.NUMBER, FieldType.DATETIME})
_EQUATABLE = _TEXTUAL | {FieldType.NUMBER, FieldType.BOOLEAN}
_ALL = _EQUATABLE | {FieldType.DATETIME}


def _present(col: ColumnElement[Any], cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return sa.and_(col.is_not(None), cond)


def _absent_or(col: ColumnElement[Any], cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return sa.or_(col.is_(None), cond)


def _cutoff(days: int, ctx: Context) -> datetime:
    return ctx.now - timedelta(days=days)


def _like_any(col: ColumnElement[Any], values: Any, how: str) -> ColumnElement[bool]:
    if how == "ends":
        return sa.or_(*(col.endswith(v, autoescape=True) for v in values))
    return sa.or_(*(col.contains(v, autoescape=True) for v in values))


@lru_cache(maxsize=4096)
def _set(values: tuple[Any, ...]) -> frozenset[Any]:
    return frozenset(values)


def _is_text(col: ColumnElement[Any]) -> bool:
    return isinstance(col.type, sa.String)


_OPERATORS: list[Operator] = [
    Operator(
        "eq", "=", Arg.ONE, _EQUATABLE,
        lambda c, v, x: _present(c, c == v),
        lambda a, v, x: a is not None and a == v,
        "equals",
    ),
    Operator(
        "neq", "!=", Arg.ONE, _EQUATABLE,
        lambda c, v, x: _absent_or(c, c != v),
        lambda a, v, x: a is None or a != v,
        "differs from (a missing value differs)",
    ),
    Operator(
        "in", "in", Arg.LIST, _EQUATABLE,
        lambda c, v, x: _present(c, in_list(c, v)),
        lambda a, v, x: a is not None and a in _set(v),
        "is one of (whole values: `edu` does not match `edu.br`)",
    ),
    Operator(
        "not_in", "not in", Arg.LIST, _EQUATABLE,
        lambda c, v, x: _absent_or(c, sa.not_(in_list(c, v))),
        lambda a, v, x: a is None or a not in _set(v),
        "is none of",
    ),
    Operator(
        "contains", "contains", Arg.ONE, _TEXTUAL,
        lambda c, v, x: _present(c, c.contains(v, autoescape=True)),
        lambda a, v, x: a is not None and v in a,
        "contains the text", pattern=True,
    ),
    Operator(
        "contains_any", "contains any", Arg.LIST, _TEXTUAL,
        lambda c, v, x: _present(c, _like_any(c, v, "contains")),
        lambda a, v, x: a is not None and any(part in a for part in v),
        "contains any of the texts", pattern=True,
    ),
    Operator(
        "not_contains", "not contains", Arg.ONE, _TEXTUAL,
        lambda c, v, x: _absent_or(c, sa.not_(c.contains(v, autoescape=True))),
        lambda a, v, x: a is None or v not in a,
        "does not contain the text", pattern=True,
    ),
    Operator(
        "starts_with", "starts with", Arg.ONE, _TEXTUAL,
        lambda c, v, x: _present(c, c.startswith(v, autoescape=True)),
        lambda a, v, x: a is not None and a.startswith(v),
        "starts with the text", pattern=True,
    ),
    Operator(
        "ends_with", "ends with", Arg.ONE, _TEXTUAL,
        lambda c, v, x: _present(c, c.endswith(v, autoescape=True)),
        lambda a, v, x: a is not None and a.endswith(v),
        "ends with the text: catches variants on purpose", pattern=True,
    ),
    Operator(
        "ends_with_any", "ends with any", Arg.LIST, _TEXTUAL,
        lambda c, v, x: _present(c, _like_any(c, v, "ends")),
        lambda a, v, x: a is not None and a.endswith(tuple(v)),
        "ends with any of the texts", pattern=True,
    ),
    Operator(
        "is_empty", "is empty", Arg.NONE, _ALL,
        lambda c, v, x: _absent_or(c, c == "") if _is_text(c) else c.is_(None),
        lambda a, v, x: a is None or a == "",
        "has no value",
    ),
    Operator(
        "is_not_empty", "is not empty", Arg.NONE, _ALL,
        lambda c, v, x: _present(c, c != "") if _is_text(c) else c.is_not(None),
        lambda a, v, x: a is not None and a != "",
        "has a value",
    ),
    Operator(
        "gt", ">", Arg.ONE, _ORDERED,
        lambda c, v, x: _present(c, c > v),
        lambda a, v, x: a is not None and a > v,
        "greater / later than",
    ),
    Operator(
        "gte", ">=", Arg.ONE, _ORDERED,
        lambda c, v, x: _present(c, c >= v),
        lambda a, v, x: a is not None and a >= v,
        "greater / later than or equal",
    ),
    Operator(
        "lt", "<", Arg.ONE, _ORDERED,
        lambda c, v, x: _present(c, c < v),
        lambda a, v, x: a is not None and a < v,
        "less / earlier than",
    ),
    Operator(
        "lte", "<=", Arg.ONE, _ORDERED,
        lambda c, v, x: _present(c, c <= v),
        lambda a, v, x: a is not None and a <= v,
        "less / earlier than or equal",
    ),
    Operator(
        "within_last_days", "within last", Arg.DAYS, frozenset({FieldType.DATETIME}),
        lambda c, v, x: _present(c, c >= _cutoff(v, x)),
        lambda a, v, x: a is not None and a >= _cutoff(v, x),
        "happened in the last N days",
    ),
    Operator(
        "older_than_days", "older than", Arg.DAYS, frozenset({FieldType.DATETIME}),
        lambda c, v, x: _present(c, c < _cutoff(v, x)),
        lambda a, v, x: a is not None and a < _cutoff(v, x),
        "happened more than N days ago (never is not older)",
    ),
    Operator(
        "is_personal", "is personal", Arg.NONE, frozenset({FieldType.DOMAIN}),
        lambda c, v, x: _present(c, c.in_(sorted(free_mail_domains()))),
        lambda a, v, x: a is not None and a in free_mail_domains(),
        "is a free-mail provider such as gmail.com",
    ),
]  # fmt: skip


OPERATORS: dict[str, Operator] = {op.name: op for op in _OPERATORS}
