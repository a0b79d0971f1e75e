"""Which of many filters can hold for one subject, found by value instead of by trying
them all: a filter that requires `field in [values]` (or `field = value`) can only hold for
a subject whose value of that field is among them. `Candidates` indexes every such filter
by those values once; for a subject it returns the indexed filters its values select plus
the filters that have no such requirement. The answer is a superset of the filters that
hold: `holds()` still decides each one, so the index only saves work, never changes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from optout.filters.ast import All, AnyOf, Condition, Node
from optout.filters.evaluate import Subject
from optout.filters.fields import Field
from optout.filters.fields import lookup as lookup_field
from optout.filters.holds import value_of

_KEYED = frozenset({"eq", "in"})

# A filter's requirement: it can hold only if one of these (field, values) pairs has the
# subject's value of the field among the values.
Keys = list[tuple[Field, tuple[object, ...]]]


def keys(node: Node) -> Keys | None:
    """The values `node` requires, or None when it can hold without any of them."""
    if isinstance(node, Condition):
        if node.op not in _KEYED:
            return None
        where = lookup_field(node.field)
        if where.relation.collection:
            return None
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        return [(where, values)]
    if isinstance(node, All):
        for item in node.items:
            found = keys(item)
            if found is not None:
                return found
        return None
    if isinstance(node, AnyOf):
        out: Keys = []
        for item in node.items:
            found = keys(item)
            if found is None:
                return None
            out += found
        return out
    return None


@dataclass
class Candidates:
    """Filters, each known by an id, indexed by the values they require."""

    always: list[int] = field(default_factory=list)
    by_value: dict[str, dict[object, list[int]]] = field(default_factory=dict)
    fields: dict[str, Field] = field(default_factory=dict)

    @classmethod
    def of(cls, filters: Iterable[tuple[int, Node]]) -> Candidates:
        out = cls()
        for key, node in filters:
            found = keys(node)
            if found is None:
                out.always.append(key)
                continue
            for where, values in found:
                out.fields[where.name] = where
                index = out.by_value.setdefault(where.name, {})
                for value in values:
                    index.setdefault(value, []).append(key)
        return out

    def for_subject(self, subject: Subject) -> list[int]:
        """The id of every filter that may hold for `subject`, each once."""
        found = dict.fromkeys(self.always)
        for name, where in self.fields.items():
            rows = subject.rows(where.relation)
            value = value_of(where, rows[0] if rows else None)
            if value is None:
                continue
            index = self.by_value[name]
            try:
                hits = index.get(value, ())
            except TypeError:  # an unhashable value: try every filter on that field
                hits = [key for listed in index.values() for key in listed]
            found.update(dict.fromkeys(hits))
        return list(found)
