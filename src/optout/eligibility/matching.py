"""Whether an exclusion matches one person (Python, with evidence) or which rows it
matches (SQL). A company-level exclusion that matches any company of a linked
group matches every person of the group (R12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from optout.db import tables as t
from optout.eligibility import index
from optout.eligibility.model import ExclusionSpec, Facts
from optout.filters.evaluate import Trace, evaluate
from optout.filters.fields import Level
from optout.filters.holds import holds
from optout.filters.operators import Context
from optout.filters.text import to_text


def match(exclusion: ExclusionSpec, facts: Facts, now: datetime) -> dict[str, Any] | None:
    """Evidence that `exclusion` matches the person, or None."""
    ctx = Context(now=now)
    if exclusion.level is Level.PEOPLE:
        if not holds(exclusion.filter, facts.subject, ctx):
            return None
        return _evidence(evaluate(exclusion.filter, facts.subject, ctx))
    own_id = facts.subject.company["id"] if facts.subject.company else None
    for company in facts.company_group:
        if not holds(exclusion.filter, company, ctx):
            continue
        trace = evaluate(exclusion.filter, company, ctx)
        if trace.matched and company.company is not None:
            evidence = _evidence(trace)
            evidence["company"] = company.company.get("domain") or company.company.get("name")
            if company.company.get("id") != own_id:
                evidence["linked_company"] = True
            return evidence
    return None


def _evidence(trace: Trace) -> dict[str, Any]:
    return {
        "conditions": [
            {"condition": to_text(c.node), "actual": _plain(c.actual)}
            for c in trace.matching_conditions()
        ]
    }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def any_matches(
    exclusions: list[ExclusionSpec],
    *,
    person: FromClause,
    company: FromClause,
    workspace_id: int,
    now: datetime,
    among: FromClause | None = None,
) -> ColumnElement[bool]:
    """True for a person row (with its company left-joined) matched by any of `exclusions`,
    read from the stored matches (`eligibility.index`).

    Over everyone, each level is one uncorrelated set the scan probes; with `among` (a
    table of person ids, the people asked about) each row probes the index by person or
    group instead, so asking about a few people reads a few rows.
    """
    parts: list[ColumnElement[bool]] = []
    for level, key in ((Level.PEOPLE, person.c.id), (Level.COMPANY, company.c.group_id)):
        level_parts: list[ColumnElement[bool]] = []
        plain, others = index.matching_ids(exclusions, level=level, now=now)
        table = t.exclusion_matches if level is Level.PEOPLE else t.exclusion_group_matches
        stored_key = table.c.person_id if level is Level.PEOPLE else table.c.group_id
        if plain and among is not None:
            level_parts.append(
                sa.exists(sa.select(1).where(stored_key == key, table.c.exclusion_id.in_(plain)))
            )
        elif plain:
            level_parts.append(
                key.in_(sa.select(stored_key).where(table.c.exclusion_id.in_(plain)))
            )
        for rule in others:
            query = index.matched(rule, workspace_id=workspace_id, now=now)
            level_parts.append(key.in_(_within(query, among, groups=level is Level.COMPANY)))
        if level_parts:
            # A person without a company has no group: never NULL, so NOT (...) stays true.
            either = sa.or_(*level_parts)
            parts.append(either if level is Level.PEOPLE else sa.and_(key.is_not(None), either))
    return sa.or_(*parts) if parts else sa.false()


def _within(query: sa.Select[Any], among: FromClause | None, *, groups: bool) -> sa.Select[Any]:
    if among is None:
        return query
    column = query.selected_columns[0]
    if not groups:
        return query.where(column.in_(sa.select(among.c.id)))
    p, c = t.people.alias(), t.companies.alias()
    return query.where(
        column.in_(
            sa.select(c.c.group_id)
            .join(p, p.c.company_id == c.c.id)
            .where(p.c.id.in_(sa.select(among.c.id)))
        )
    )
