"""Validation: turn a raw AST into a canonical one for a level, or say where it is wrong.

Values are coerced to the field's type and canonical form here, once, so the
compiler and the evaluator compare like with like: text is case-folded,
emails and domains normalized, numbers become floats (as stored), dates
become naive UTC datetimes.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

from optout.articles import with_article
from optout.errors import InvalidFilter, InvalidInput
from optout.filters.ast import All, AnyOf, Condition, Node, Not, Scalar, Value
from optout.filters.fields import Field, FieldType, Level, lookup
from optout.filters.operators import OPERATORS, Arg, Operator
from optout.filters.sqlfunc import ascii_fold
from optout.filters.suggest import did_you_mean, nearest
from optout.normalize import normalize_domain, normalize_email, split_domain_list

MAX_DEPTH = 16
MAX_LIST = 20_000
MAX_DAYS = 36_500

__all__ = ["Level", "validate"]


def validate(node: Node, level: Level) -> Node:
    """The canonical form of `node` for `level`, or InvalidFilter naming place and reason."""
    return _node(node, level, where="filter", depth=0)


def _node(node: Node, level: Level, *, where: str, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise InvalidFilter(f"nested deeper than {MAX_DEPTH} levels", where=where)
    if isinstance(node, Condition):
        return _condition(node, level, where=where)
    if isinstance(node, Not):
        return Not(_node(node.item, level, where=f"{where}.not", depth=depth + 1))
    kind = "all" if isinstance(node, All) else "any"
    if not node.items:
        raise InvalidFilter(f"'{kind}' needs at least one condition", where=where)
    items = tuple(
        _node(item, level, where=f"{where}.{kind}[{i}]", depth=depth + 1)
        for i, item in enumerate(node.items)
    )
    if len(items) == 1:
        return items[0]
    return All(items) if isinstance(node, All) else AnyOf(items)


def _condition(cond: Condition, level: Level, *, where: str) -> Condition:
    op = OPERATORS.get(cond.op)
    # The condition as written names the place better than its path in the tree.
    where = f"in '{cond.field} {op.syntax if op is not None else cond.op}'"
    field = lookup(cond.field, where=where)
    if op is None:
        known = f"; known operators: {', '.join(OPERATORS)}"
        hint = did_you_mean(nearest(cond.op, OPERATORS)) or known
        raise InvalidFilter(f"unknown operator {cond.op!r}{hint}", where=where)
    if level not in field.relation.levels:
        allowed = " or ".join(sorted(lvl.value for lvl in field.relation.levels))
        raise InvalidFilter(
            f"field {field.name!r} cannot be used in a {level.value}-level filter "
            f"(it belongs to {allowed}-level filters)",
            where=where,
        )
    if field.type not in op.types:
        types = ", ".join(sorted(t.value for t in op.types))
        raise InvalidFilter(
            f"operator {op.name!r} does not apply to {field.name!r}, "
            f"{with_article(field.type.value)} "
            f"field (it takes {types})",
            where=where,
        )
    return Condition(field.name, op.name, _value(cond.value, field, op, where=where))


def _value(value: Value, field: Field, op: Operator, *, where: str) -> Value:
    if op.arg is Arg.NONE:
        if value is not None:
            raise InvalidFilter(f"operator {op.name!r} takes no value", where=where)
        return None
    if op.arg is Arg.DAYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidFilter(f"{op.name!r} takes a whole number of days", where=where)
        if not 0 <= value <= MAX_DAYS:
            raise InvalidFilter(f"days must be between 0 and {MAX_DAYS}", where=where)
        return value
    if op.arg is Arg.LIST:
        if isinstance(value, str) and field.type is FieldType.DOMAIN and not op.pattern:
            try:
                items: tuple[Any, ...] = tuple(split_domain_list(value))
            except InvalidInput as exc:
                raise InvalidFilter(exc.message, where=where) from exc
        elif isinstance(value, tuple | list):
            items = tuple(value)
        else:
            raise InvalidFilter(f"{op.name!r} takes a list of values", where=where)
        if not items:
            raise InvalidFilter(f"{op.name!r} needs at least one value", where=where)
        if len(items) > MAX_LIST:
            raise InvalidFilter(f"at most {MAX_LIST} values in one list", where=where)
        # The message quotes the value at fault, which names it better than its position.
        canonical = (_scalar(v, field, op, where=where) for v in items)
        return tuple(dict.fromkeys(canonical))
    if value is None or isinstance(value, tuple | list):
        raise InvalidFilter(f"{op.name!r} takes one value", where=where)
    return _scalar(value, field, op, where=where)


def _scalar(value: Any, field: Field, op: Operator, *, where: str) -> Scalar:
    kind = field.type
    if kind in (FieldType.TEXT, FieldType.EMAIL, FieldType.DOMAIN):
        if not isinstance(value, str):
            raise InvalidFilter(f"{field.name!r} takes text, not {value!r}", where=where)
        text = value.strip()
        if not text:
            raise InvalidFilter("empty text; use 'is empty' to match missing values", where=where)
        if "\x00" in text:
            # PostgreSQL cannot take it, so the SQL form could not run where Python does.
            raise InvalidFilter("text cannot contain the NUL character", where=where)
        if kind is FieldType.TEXT or op.pattern:
            return ascii_fold(text)
        try:
            if kind is FieldType.EMAIL:
                return normalize_email(text).address
            return normalize_domain(text)
        except InvalidInput as exc:
            raise InvalidFilter(exc.message, where=where) from exc
    if kind is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(f"{field.name!r} takes a number, not {value!r}", where=where)
        # Number columns hold floats: compare float to float, in SQL and in Python alike.
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise InvalidFilter(f"{field.name!r} takes a finite number, not {value!r}", where=where)
        return number
    if kind is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidFilter(f"{field.name!r} takes true or false, not {value!r}", where=where)
        return value
    return _datetime(value, field, where=where)


def _datetime(value: Any, field: Field, *, where: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidFilter(
                f"{field.name!r} takes a date such as 2026-01-31 or 2026-01-31T09:00:00Z, "
                f"not {value!r}",
                where=where,
            ) from exc
    else:
        raise InvalidFilter(f"{field.name!r} takes a date, not {value!r}", where=where)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
