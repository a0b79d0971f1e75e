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

    People-level rules: each row reads its own matches from the index by (person, rule).
    Company-level rules over everyone: one uncorrelated list of the ids of the companies
    whose group matches, probed with the person row's company, so the scan needs no join
    to companies; with `among` (a table of person ids, the people asked about) each row
    reads its group's matches instead, so asking about a few people reads a few rows.
    """
    parts: list[ColumnElement[bool]] = []
    for level in (Level.PEOPLE, Level.COMPANY):
        plain, others = index.matching_ids(exclusions, level=level, now=now)
        table, stored_key = index.stored_table(level)
        by_company = level is Level.COMPANY and among is None
        if level is Level.PEOPLE:
            key = person.c.id
        else:
            key = person.c.company_id if by_company else company.c.group_id
        probes: list[ColumnElement[bool]] = []
        if plain and by_company:
            stored = sa.select(stored_key).where(table.c.exclusion_id.in_(plain))
            probes.append(key.in_(_companies_of(stored)))
        elif plain:
            # Correlated: each row reads its own few matches from the (key, rule) index and
            # checks them against the rules that apply ("+ 0" keeps the planner from
            # seeking once per applying rule instead). Over everyone this beats a list of
            # every applying match, which has several entries per person.
            probes.append(
                sa.exists(
                    sa.select(1).where(stored_key == key, (table.c.exclusion_id + 0).in_(plain))
                )
            )
        for rule in others:
            matched = _within(index.matched(rule, workspace_id=workspace_id, now=now), among, level)
            probes.append(key.in_(_companies_of(matched) if by_company else matched))
        if not probes:
            continue
        either = sa.or_(*probes)
        # A person without a company has no group: never NULL, so NOT (...) stays true.
        parts.append(either if level is Level.PEOPLE else sa.and_(key.is_not(None), either))
    return sa.or_(*parts) if parts else sa.false()


def _companies_of(groups: sa.Select[Any]) -> sa.Select[Any]:
    c = t.companies.alias()
    return sa.select(c.c.id).where(c.c.group_id.in_(groups))


def _within(query: sa.Select[Any], among: FromClause | None, level: Level) -> sa.Select[Any]:
    if among is None:
        return query
    column = query.selected_columns[0]
    if level is Level.PEOPLE:
        return query.where(column.in_(sa.select(among.c.id)))
    p, c = t.people.alias(), t.companies.alias()
    return query.where(
        column.in_(
            sa.select(c.c.group_id)
            .join(p, p.c.company_id == c.c.id)
            .where(p.c.id.in_(sa.select(among.c.id)))
        )
    )
