"""A filter as pages show it: fields by their labels, operators in words.

    Company domain is one of (acme.com, globex.io) and not Job title contains any of (sales, hr)

The text syntax (`to_text`) stays what is stored, typed and sent through the API; this is
only read. `readable` turns stored filter text into words, and leaves text that does not
parse as it is (a page shows what it has rather than fail).
"""

from __future__ import annotations

from datetime import datetime

from optout.errors import InvalidFilter
from optout.filters.ast import All, AnyOf, Condition, Node, Not, Value
from optout.filters.fields import FieldType, label, lookup
from optout.filters.text import parse

__all__ = ["readable", "to_words"]

# The operators in words; a date comparison reads as before / after.
_WORDS = {
    "eq": "is",
    "neq": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "contains_any": "contains any of",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "ends_with_any": "ends with any of",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "within_last_days": "is within the last",
    "older_than_days": "is more than",
    "is_personal": "is a personal email provider",
}
_DATE_WORDS = {
    "gt": "is after",
    "gte": "is on or after",
    "lt": "is before",
    "lte": "is on or before",
}

_OR, _AND, _ATOM = 1, 2, 3  # binding strength: a weaker child is parenthesised


def to_words(node: Node) -> str:
    """The filter in words, for a page."""
    return _render(node)[0]


def readable(text: str) -> str:
    """Stored filter text in words; text that does not parse, as it is."""
    try:
        return to_words(parse(text))
    except InvalidFilter:
        return text


def _render(node: Node) -> tuple[str, int]:
    if isinstance(node, Condition):
        return _condition(node), _ATOM
    if isinstance(node, Not):
        inner, strength = _render(node.item)
        return f"not {inner if strength == _ATOM else f'({inner})'}", _ATOM
    if len(node.items) == 1:
        return _render(node.items[0])
    strength, joiner = (_AND, " and ") if isinstance(node, All) else (_OR, " or ")
    assert isinstance(node, All | AnyOf)
    parts = []
    for item in node.items:
        text, own = _render(item)
        parts.append(f"({text})" if own < strength else text)
    return joiner.join(parts), strength


def _condition(cond: Condition) -> str:
    try:
        kind: FieldType | None = lookup(cond.field).type
    except InvalidFilter:
        kind = None
    name = label(cond.field)
    if kind is FieldType.BOOLEAN and cond.op in ("eq", "neq") and isinstance(cond.value, bool):
        yes = cond.value if cond.op == "eq" else not cond.value
        return f"{name}: {'yes' if yes else 'no'}"
    words = (_DATE_WORDS if kind is FieldType.DATETIME else {}).get(cond.op) or _WORDS.get(
        cond.op, cond.op.replace("_", " ")
    )
    value = cond.value
    if value is None:
        return f"{name} {words}"
    if cond.op in ("within_last_days", "older_than_days"):
        return f"{name} {words} {value} days" + (" ago" if cond.op == "older_than_days" else "")
    if isinstance(value, tuple):
        return f"{name} {words} ({', '.join(_value(v) for v in value)})"
    return f"{name} {words} {_value(value)}"


def _value(value: Value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int | float):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") if value.time() else value.strftime("%Y-%m-%d")
    text = str(value)
    return f"“{text}”" if not text or any(c in text for c in " ,()") else text
