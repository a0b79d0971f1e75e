"""Baseline (i): the same questions answered by a per-row Python loop.

A fixed, evenly spread sample of people (every k-th id) is loaded with the project's
own loaders and judged one row at a time with the project's Python forms
(`optout.filters.evaluate`, `optout.eligibility.decide`); the time is then scaled
linearly to the whole workspace. Each loop's count is checked against the project's
SQL restricted to the same sample.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import ExclusionSpec, Situation, decide
from optout.filters import Subject, evaluate
from optout.filters.operators import Context
from optout.services.eligibility import facts

CHUNK = 1000


def sample_ids(db: Connection, *, workspace_id: int, size: int) -> list[int]:
    p = t.people
    total = int(db.scalar(sa.select(sa.func.max(p.c.id)).where(p.c.workspace_id == workspace_id)))
    step = max(1, total // size)
    return list(range(1, total + 1, step))[:size]


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def rule_matches(
    db: Connection, *, workspace_id: int, exclusion: ExclusionSpec, ids: list[int], now: Any
) -> int:
    """People of `ids` a company-level rule reaches: each person's linked companies are
    loaded, then the rule is evaluated per person against each company of the group."""
    p, c = t.people, t.companies
    ctx = Context(now=now)
    matched = 0
    for chunk in _chunks(ids):
        people = db.execute(
            sa.select(p.c.id, p.c.company_id).where(
                p.c.workspace_id == workspace_id, p.c.id.in_(chunk)
            )
        ).all()
        groups = sa.select(c.c.group_id).where(c.c.id.in_({r.company_id for r in people}))
        by_id: dict[int, dict[str, Any]] = {}
        by_group: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in db.execute(
            sa.select(c).where(c.c.workspace_id == workspace_id, c.c.group_id.in_(groups))
        ).mappings():
            by_id[row["id"]] = dict(row)
            by_group[row["group_id"]].append(by_id[row["id"]])
        for person in people:
            company = by_id.get(person.company_id)
            members = by_group[company["group_id"]] if company else []
            if any(
                evaluate(exclusion.filter, Subject(company=member), ctx).matched
                for member in members
            ):
                matched += 1
    return matched


def allowed(db: Connection, *, situation: Situation, ids: list[int]) -> int:
    """People of `ids` that `decide()` allows, facts loaded in chunks."""
    count = 0
    for chunk in _chunks(ids):
        found = facts(
            db,
            workspace_id=situation.workspace_id,
            person_ids=chunk,
            sequence_id=situation.sequence.id,
        )
        count += sum(decide(f, situation).allowed for f in found.values())
    return count
