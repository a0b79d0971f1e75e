"""The filter AST and its JSON form.

A filter is `all` / `any` / `not` over conditions `field operator value`.
Values are kept canonical after validation (normalized domains and emails,
naive-UTC datetimes, tuples for lists), so two equal filters compare equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from optout.filters.places import ROOT, child, filter_error, negated

Scalar: TypeAlias = str | int | float | bool | datetime
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Value = None


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node: TypeAlias = Condition | All | AnyOf | Not


def conditions(node: Node) -> list[Condition]:
    """Every condition in the tree, in reading order."""
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Not):
        return conditions(node.item)
    return [c for item in node.items for c in conditions(item)]


def is_negative_only(node: Node) -> bool:
    """True when every condition is a negation (`!=`, `not in`, `not contains`, under `not`).

    Such a filter matches almost everyone: R22 asks for a warning.
    """
    return _negative(node, negated=False)


_NEGATIVE_OPS = frozenset({"neq", "not_in", "not_contains", "is_not_empty", "older_than_days"})


def _negative(node: Node, *, negated: bool) -> bool:
    if isinstance(node, Condition):
        return (node.op in _NEGATIVE_OPS) != negated
    if isinstance(node, Not):
        return _negative(node.item, negated=not negated)
    return all(_negative(item, negated=negated) for item in node.items)


def to_json(node: Node) -> dict[str, Any]:
    if isinstance(node, Condition):
        out: dict[str, Any] = {"field": node.field, "op": node.op}
        if node.value is not None:
            out["value"] = _value_to_json(node.value)
        return out
    if isinstance(node, All):
        return {"all": [to_json(item) for item in node.items]}
    if isinstance(node, AnyOf):
        return {"any": [to_json(item) for item in node.items]}
    return {"not": to_json(node.item)}


def _value_to_json(value: Value) -> Any:
    if isinstance(value, tuple):
        return [_value_to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


_SHAPES = (
    "{'field': ..., 'op': ..., 'value': ...}, {'all': [...]}, {'any': [...]} or {'not': {...}}"
)


def from_json(data: Any, *, location: str = ROOT) -> Node:
    """Build an AST from its JSON form; shape errors name the place. Types are checked by
    `validate`, which also turns ISO date strings back into datetimes. A problem names its
    place in words and keeps its `location` (`filter.all[0]`) for programs."""
    if not isinstance(data, Mapping):
        raise filter_error(f"expected a condition or a group, {_SHAPES}; not {data!r}", location)
    keys = set(data)
    if keys in ({"all"}, {"any"}):
        key = next(iter(keys))
        items = data[key]
        if not isinstance(items, list):
            raise filter_error(f"'{key}' takes a list", location)
        nodes = tuple(
            from_json(item, location=child(location, key, i)) for i, item in enumerate(items)
        )
        return All(nodes) if key == "all" else AnyOf(nodes)
    if keys == {"not"}:
        return Not(from_json(data["not"], location=negated(location)))
    if "field" in keys and "op" in keys and keys <= {"field", "op", "value"}:
        field, op = data["field"], data["op"]
        if not isinstance(field, str) or not isinstance(op, str):
            raise filter_error("'field' and 'op' must be strings", location)
        raw = data.get("value")
        value: Value
        if isinstance(raw, list):
            value = tuple(raw)
        elif raw is None or isinstance(raw, str | int | float | bool):
            value = raw
        else:
            raise filter_error(f"unsupported value {raw!r}", location)
        return Condition(field, op, value)
    raise filter_error(f"expected a condition or a group, {_SHAPES}", location)
