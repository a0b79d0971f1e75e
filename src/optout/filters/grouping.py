"""How the children of an `all` are grouped, shared by the compiler and the evaluator.

Conditions on one collection relation (say the company's opportunities) that sit
side by side under the same `all` must hold for the same member of the
collection: "an opportunity in stage Negotiation with amount > 10000".
"""

from __future__ import annotations

from dataclasses import dataclass

from optout.filters.ast import Condition, Node
from optout.filters.fields import Relation, lookup


@dataclass(frozen=True)
class CollectionGroup:
    relation: Relation
    conditions: tuple[Condition, ...]


def partition(items: tuple[Node, ...]) -> list[Node | CollectionGroup]:
    """Items in order; conditions on the same collection merged at the first one's place."""
    out: list[Node | CollectionGroup] = []
    groups: dict[str, int] = {}
    for item in items:
        relation = lookup(item.field).relation if isinstance(item, Condition) else None
        if relation is None or not relation.collection:
            out.append(item)
            continue
        assert isinstance(item, Condition)
        if relation.name in groups:
            index = groups[relation.name]
            group = out[index]
            assert isinstance(group, CollectionGroup)
            out[index] = CollectionGroup(relation, (*group.conditions, item))
        else:
            groups[relation.name] = len(out)
            out.append(CollectionGroup(relation, (item,)))
    return out
