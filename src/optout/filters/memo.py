"""Remember what was worked out about a filter, by the filter object itself.

Stored filters are parsed once per distinct text (`services.filters.load`), so the same
rule gives the same object on every read; hashing it instead would walk every value of a
thousand-domain list on each lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from optout.filters.ast import Node

R = TypeVar("R")
_KEPT = 8192


def by_node(fn: Callable[[Node], R]) -> Callable[[Node], R]:
    kept: dict[int, tuple[Node, R]] = {}

    @wraps(fn)
    def remembered(node: Node) -> R:
        found = kept.get(id(node))
        if found is not None and found[0] is node:
            return found[1]
        value = fn(node)
        if len(kept) >= _KEPT:
            kept.clear()
        kept[id(node)] = (node, value)
        return value

    return remembered
