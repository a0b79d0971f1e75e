"""Proposals for explain (R29) with 1,000 exclusions, measured next to the project's code.

1. `situation_by_text`: load the exclusions keyed by their stored JSON *text*, so a known
   filter costs one dict lookup; the project decodes every filter's JSON and encodes it
   again (`json.dumps(sort_keys=True)`) to key its cache, on every call.
2. `fast_match`: decide whether a rule matches with a predicate compiled once per filter
   (closures over the field reader, the operator's Python form and the value), and run
   the traced `evaluate` only for the rules that match, to build their evidence. Filters
   on opportunity collections keep the traced path (same-member grouping).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import matching
from optout.eligibility.model import ExclusionSpec, Facts, Purpose, Situation
from optout.filters import Level, Subject
from optout.filters.ast import All, AnyOf, Condition, Node, Not
from optout.filters.fields import COMPANY, PERSON, FieldType
from optout.filters.fields import lookup as lookup_field
from optout.filters.operators import OPERATORS, Context
from optout.filters.sqlfunc import ascii_fold
from optout.services import audiences, sequences
from optout.services.filters import read_filter

_SPECS: dict[tuple[str, str], Any] = {}


def _specs(db: Connection, workspace_id: int) -> list[ExclusionSpec]:
    x = t.exclusions
    rows = db.execute(
        sa.select(
            x.c.id,
            x.c.name,
            x.c.level,
            sa.cast(x.c.filter, sa.Text).label("text"),
            x.c.enabled,
            x.c.exclude_from_sequences,
            x.c.unenroll_existing_on_save,
        )
        .where(x.c.workspace_id == workspace_id)
        .order_by(x.c.id)
    )
    out = []
    for row in rows:
        key = (row.text, row.level)
        node = _SPECS.get(key)
        if node is None:
            import json

            node = _SPECS[key] = read_filter(json.loads(row.text), Level(row.level))
        out.append(
            ExclusionSpec(
                row.id,
                row.name,
                Level(row.level),
                node,
                row.enabled,
                row.exclude_from_sequences,
                row.unenroll_existing_on_save,
            )
        )
    return out


def situation_by_text(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    purpose: Purpose,
    now: datetime,
    audience_id: int | None = None,
) -> Situation:
    return Situation(
        workspace_id=workspace_id,
        sequence=sequences.spec(db, workspace_id=workspace_id, sequence_id=sequence_id),
        exclusions=_specs(db, workspace_id),
        purpose=purpose,
        now=now,
        audience=(
            audiences.spec(db, workspace_id=workspace_id, audience_id=audience_id)
            if audience_id is not None
            else None
        ),
    )


Predicate = Callable[[Subject, Context], bool]
_COMPILED: dict[int, tuple[Node, Predicate | None]] = {}


def _compile(node: Node) -> Predicate | None:
    """A plain boolean form of `node`, or None when it reads a collection."""
    if isinstance(node, Not):
        inner = _compile(node.item)
        return None if inner is None else (lambda s, c: not inner(s, c))
    if isinstance(node, All | AnyOf):
        parts = [_compile(item) for item in node.items]
        if any(p is None for p in parts):
            return None
        ready = [p for p in parts if p is not None]
        if isinstance(node, All):
            return lambda s, c: all(p(s, c) for p in ready)
        return lambda s, c: any(p(s, c) for p in ready)
    assert isinstance(node, Condition)
    field = lookup_field(node.field)
    if field.relation not in (PERSON, COMPANY):
        return None
    test, value, read = OPERATORS[node.op].py, node.value, field.value
    fold = field.type is FieldType.TEXT
    relation_is_person = field.relation is PERSON

    def check(subject: Subject, ctx: Context) -> bool:
        row = subject.person if relation_is_person else subject.company
        actual = None if row is None else read(row)
        if fold and isinstance(actual, str):
            actual = ascii_fold(actual)
        return bool(test(actual, value, ctx))

    return check


def _predicate(node: Node) -> Predicate | None:
    found = _COMPILED.get(id(node))
    if found is None or found[0] is not node:
        found = _COMPILED[id(node)] = (node, _compile(node))
    return found[1]


_traced_match = matching.match


def fast_match(exclusion: ExclusionSpec, facts: Facts, now: datetime) -> dict[str, Any] | None:
    predicate = _predicate(exclusion.filter)
    if predicate is not None:
        ctx = Context(now=now)
        subjects = [facts.subject] if exclusion.level is Level.PEOPLE else facts.company_group
        if not any(predicate(subject, ctx) for subject in subjects):
            return None
    return _traced_match(exclusion, facts, now)
