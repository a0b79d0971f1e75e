"""Reading filters from what users and storage give: text, JSON or an AST."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from optout.filters import Level, Node, from_json, parse, to_json, validate
from optout.filters.ast import All, AnyOf, Condition, Not

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


def load(data: dict[str, Any], level: Level) -> Node:
    """A stored filter back as an AST; parsed once per distinct filter."""
    return _load(json.dumps(data, sort_keys=True), level)


@lru_cache(maxsize=8192)
def _load(text: str, level: Level) -> Node:
    return validate(from_json(json.loads(text)), level)
