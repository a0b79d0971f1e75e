"""Evaluate a validated filter against one subject, with a trace of every condition.

The Python twin of `optout.filters.sql`: same grouping, same operator forms,
same case folding. The trace is the evidence that explain (R29) shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optout.filters.ast import All, Condition, Node, Not
from optout.filters.fields import COMPANY, OPPORTUNITY, PERSON, FieldType, Relation, Row
from optout.filters.fields import lookup as lookup_field
from optout.filters.grouping import CollectionGroup, partition
from optout.filters.operators import OPERATORS, Context
from optout.filters.sqlfunc import ascii_fold


@dataclass(frozen=True)
class Subject:
    """What a filter can see of one person or company."""

    person: Row | None = None
    company: Row | None = None
    opportunities: Sequence[Row] = ()  # the company's
    person_opportunities: Sequence[Row] = ()  # through the person's contact roles

    def rows(self, relation: Relation) -> Sequence[Row | None]:
        if relation is PERSON:
            return [self.person]
        if relation is COMPANY:
            return [self.company]
        if relation is OPPORTUNITY:
            return self.opportunities
        return self.person_opportunities


@dataclass(frozen=True)
class Trace:
    """The outcome of one node; for a condition, the value it saw."""

    node: Node
    matched: bool
    actual: Any = None
    children: tuple[Trace, ...] = field(default=())

    def matching_conditions(self) -> list[Trace]:
        """The conditions that made this node match (empty when it did not)."""
        if not self.matched:
            return []
        if isinstance(self.node, Condition):
            return [self]
        return [c for child in self.children for c in child.matching_conditions()]


def evaluate(node: Node, subject: Subject, ctx: Context) -> Trace:
    if isinstance(node, Condition):
        return _group(CollectionGroup(lookup_field(node.field).relation, (node,)), subject, ctx)[0]
    if isinstance(node, Not):
        inner = evaluate(node.item, subject, ctx)
        return Trace(node, not inner.matched, children=(inner,))
    children: list[Trace] = []
    items = partition(node.items) if isinstance(node, All) else list(node.items)
    for item in items:
        if isinstance(item, CollectionGroup):
            children.extend(_group(item, subject, ctx))
        else:
            children.append(evaluate(item, subject, ctx))
    combine = all if isinstance(node, All) else any
    return Trace(node, combine(c.matched for c in children), children=tuple(children))


def _read(cond: Condition, row: Mapping[str, Any] | None) -> Any:
    if row is None:
        return None
    field = lookup_field(cond.field)
    value = field.value(row)
    if field.type is FieldType.TEXT and isinstance(value, str):
        return ascii_fold(value)
    return value


def _test(cond: Condition, actual: Any, ctx: Context) -> bool:
    return OPERATORS[cond.op].py(actual, cond.value, ctx)


def _group(group: CollectionGroup, subject: Subject, ctx: Context) -> list[Trace]:
    """Traces of the group's conditions, all read from the same row.

    For a collection the row is the first member satisfying every condition,
    else (nothing matched) each condition reports whether any member satisfies it.
    """
    rows = subject.rows(group.relation)
    if not group.relation.collection:
        row = rows[0] if rows else None
        return [Trace(c, _test(c, _read(c, row), ctx), _read(c, row)) for c in group.conditions]
    for row in rows:
        if all(_test(c, _read(c, row), ctx) for c in group.conditions):
            return [Trace(c, True, _read(c, row)) for c in group.conditions]
    traces = []
    for cond in group.conditions:
        seen = [_read(cond, row) for row in rows]
        traces.append(Trace(cond, False, tuple(seen)))
    return traces
