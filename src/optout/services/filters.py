"""Reading filters from what users and storage give: text, JSON or an AST."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from optout.filters import Level, Node, from_json, parse, to_json, validate
from optout.filters.ast import All, AnyOf, Condition, Not
from optout.filters.fields import FieldType, lookup

FilterInput = str | dict[str, Any] | Node


def read_filter(raw: FilterInput, level: Level) -> Node:
    """A validated filter for `level` from text, its JSON form or an AST (R34)."""
    if isinstance(raw, str):
        node = parse(raw)
    elif isinstance(raw, Condition | All | AnyOf | Not):
        node = raw
    else:
        node = from_json(raw)
    return validate(node, level)


def stored(node: Node) -> dict[str, Any]:
    return to_json(node)


def load(data: dict[str, Any] | str, level: Level) -> Node:
    """A stored filter back as an AST, from its JSON text or its decoded form; parsed once
    per distinct text, so the same stored filter gives the same object."""
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True)
    return _load(text, level)


@lru_cache(maxsize=8192)
def _load(text: str, level: Level) -> Node:
    # Stored filters were validated (and their values canonicalized) when saved: only
    # the JSON form's ISO dates need turning back into datetimes. Re-validating would
    # re-normalize every address of every list, at ~0.3 ms each.
    return _restored(from_json(json.loads(text)))


def _restored(node: Node) -> Node:
    if isinstance(node, Condition):
        if isinstance(node.value, str) and lookup(node.field).type is FieldType.DATETIME:
            return Condition(node.field, node.op, datetime.fromisoformat(node.value))
        return node
    if isinstance(node, Not):
        return Not(_restored(node.item))
    items = tuple(_restored(item) for item in node.items)
    return All(items) if isinstance(node, All) else AnyOf(items)
