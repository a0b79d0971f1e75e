"""`holds()`: the yes/no of `evaluate()` without the trace, for hot paths.

The worker's send-time gate asks a thousand rules about every claimed person; it
needs the evidence only for the rule that matched. Same grouping, folding and
operator table as `evaluate`; a property test keeps the two in agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optout.filters.ast import All, Condition, Node, Not
from optout.filters.evaluate import Subject
from optout.filters.fields import Field, FieldType, Row
from optout.filters.fields import lookup as lookup_field
from optout.filters.grouping import CollectionGroup, partition
from optout.filters.operators import OPERATORS, Context
from optout.filters.sqlfunc import ascii_fold


def holds(node: Node, subject: Subject, ctx: Context) -> bool:
    if isinstance(node, Condition):
        return _group((node,), subject, ctx)
    if isinstance(node, Not):
        return not holds(node.item, subject, ctx)
    if isinstance(node, All):
        for item in partition(node.items):
            if isinstance(item, CollectionGroup):
                if not _group(item.conditions, subject, ctx):
                    return False
            elif not holds(item, subject, ctx):
                return False
        return True
    return any(holds(item, subject, ctx) for item in node.items)


def _test(cond: Condition, row: Row | None, ctx: Context) -> bool:
    return OPERATORS[cond.op].py(value_of(lookup_field(cond.field), row), cond.value, ctx)


def value_of(field: Field, row: Row | None) -> Any:
    """The value of `field` in `row` as the operators compare it (text folded)."""
    if row is None:
        return None
    value = field.value(row)
    if field.type is FieldType.TEXT and isinstance(value, str):
        return ascii_fold(value)
    return value


def _group(conditions: Sequence[Condition], subject: Subject, ctx: Context) -> bool:
    relation = lookup_field(conditions[0].field).relation
    rows = subject.rows(relation)
    if not relation.collection:
        row = rows[0] if rows else None
        return all(_test(c, row, ctx) for c in conditions)
    return any(all(_test(c, row, ctx) for c in conditions) for row in rows)
