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
from optout.filters.places import ROOT, child, filter_error, negated
from optout.filters.sqlfunc import ascii_fold
from optout.filters.suggest import did_you_mean, nearest
from optout.filters.words import to_words
from optout.normalize import normalize_domain, normalize_email, split_domain_list

MAX_DEPTH = 16
MAX_LIST = 20_000
MAX_DAYS = 36_500

__all__ = ["Level", "validate"]

# A field's type as a message names it.
TYPE_WORDS = {
    FieldType.TEXT: "text",
    FieldType.EMAIL: "email",
    FieldType.DOMAIN: "domain",
    FieldType.NUMBER: "number",
    FieldType.BOOLEAN: "yes/no",
    FieldType.DATETIME: "date",
}


def validate(node: Node, level: Level) -> Node:
    """The canonical form of `node` for `level`, or InvalidFilter naming place and reason."""
    return _node(node, level, location=ROOT, depth=0)


def _node(node: Node, level: Level, *, location: str, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise filter_error(f"nested deeper than {MAX_DEPTH} levels", location)
    if isinstance(node, Condition):
        return _condition(node, level, location=location)
    if isinstance(node, Not):
        return Not(_node(node.item, level, location=negated(location), depth=depth + 1))
    kind = "all" if isinstance(node, All) else "any"
    if not node.items:
        raise filter_error(f"'{kind}' needs at least one condition", location)
    items = tuple(
        _node(item, level, location=child(location, kind, i), depth=depth + 1)
        for i, item in enumerate(node.items)
    )
    if len(items) == 1:
        return items[0]
    return All(items) if isinstance(node, All) else AnyOf(items)


def _condition(cond: Condition, level: Level, *, location: str) -> Condition:
    """The condition checked against its field and operator; a problem is placed by its
    position and the condition in words, and told with the field's label."""
    try:
        return _checked(cond, level)
    except InvalidFilter as error:
        raise filter_error(error.reason, location, shown=_shown(cond)) from None


def _shown(cond: Condition) -> str:
    try:
        return to_words(cond)
    except (InvalidFilter, TypeError, ValueError):
        return f"{cond.field} {cond.op}"


def _checked(cond: Condition, level: Level) -> Condition:
    op = OPERATORS.get(cond.op)
    field = lookup(cond.field)
    if op is None:
        known = f"; known operators: {', '.join(OPERATORS)}"
        hint = did_you_mean(nearest(cond.op, OPERATORS)) or known
        raise InvalidFilter(f"unknown operator {cond.op!r}{hint}")
    if level not in field.relation.levels:
        allowed = " or ".join(sorted(lvl.value for lvl in field.relation.levels))
        raise InvalidFilter(
            f"{field.label} cannot be used in a {level.value}-level filter "
            f"(it belongs to {allowed}-level filters)"
        )
    if field.type not in op.types:
        types = " or ".join(sorted(TYPE_WORDS[t] for t in op.types))
        raise InvalidFilter(
            f"'{op.syntax}' does not apply to {field.label}, "
            f"{with_article(TYPE_WORDS[field.type])} field ('{op.syntax}' takes {types} fields)"
        )
    return Condition(field.name, op.name, _value(cond.value, field, op))


def _value(value: Value, field: Field, op: Operator) -> Value:
    if op.arg is Arg.NONE:
        if value is not None:
            raise InvalidFilter(f"'{op.syntax}' takes no value")
        return None
    if op.arg is Arg.DAYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidFilter(f"'{op.syntax}' takes a whole number of days")
        if not 0 <= value <= MAX_DAYS:
            raise InvalidFilter(f"days must be between 0 and {MAX_DAYS}")
        return value
    if op.arg is Arg.LIST:
        if isinstance(value, str) and field.type is FieldType.DOMAIN and not op.pattern:
            try:
                items: tuple[Any, ...] = tuple(split_domain_list(value))
            except InvalidInput as exc:
                raise InvalidFilter(exc.message) from exc
        elif isinstance(value, tuple | list):
            items = tuple(value)
        else:
            raise InvalidFilter(f"'{op.syntax}' takes a list of values")
        if not items:
            raise InvalidFilter(f"'{op.syntax}' needs at least one value")
        if len(items) > MAX_LIST:
            raise InvalidFilter(f"at most {MAX_LIST} values in one list")
        # The message quotes the value at fault, which names it better than its position.
        canonical = (_scalar(v, field, op) for v in items)
        return tuple(dict.fromkeys(canonical))
    if value is None or isinstance(value, tuple | list):
        raise InvalidFilter(f"'{op.syntax}' takes one value")
    return _scalar(value, field, op)


def _scalar(value: Any, field: Field, op: Operator) -> Scalar:
    kind = field.type
    if kind in (FieldType.TEXT, FieldType.EMAIL, FieldType.DOMAIN):
        if not isinstance(value, str):
            raise InvalidFilter(f"{field.label} takes text, not {value!r}")
        text = value.strip()
        if not text:
            raise InvalidFilter("empty text; use 'is empty' to match missing values")
        if "\x00" in text:
            # PostgreSQL cannot take it, so the SQL form could not run where Python does.
            raise InvalidFilter("text cannot contain the NUL character")
        if kind is FieldType.TEXT or op.pattern:
            return ascii_fold(text)
        try:
            if kind is FieldType.EMAIL:
                return normalize_email(text).address
            return normalize_domain(text)
        except InvalidInput as exc:
            raise InvalidFilter(exc.message) from exc
    if kind is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(f"{field.label} takes a number, not {value!r}")
        # Number columns hold floats: compare float to float, in SQL and in Python alike.
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise InvalidFilter(f"{field.label} takes a finite number, not {value!r}")
        return number
    if kind is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidFilter(f"{field.label} takes true or false, not {value!r}")
        return value
    return _datetime(value, field)


def _datetime(value: Any, field: Field) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidFilter(
                f"{field.label} takes a date such as 2026-01-31 or 2026-01-31T09:00:00Z, "
                f"not {value!r}"
            ) from exc
    else:
        raise InvalidFilter(f"{field.label} takes a date, not {value!r}")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
