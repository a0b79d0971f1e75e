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
from optout.eligibility.model import ExclusionSpec, Facts
from optout.filters.evaluate import Trace, evaluate
from optout.filters.fields import Level
from optout.filters.holds import holds
from optout.filters.operators import Context
from optout.filters.sql import SqlScope, compile_sql
from optout.filters.text import to_text

# SQLite refuses compound SELECTs of more than 500 terms; stay well below.
_UNION_CHUNK = 200


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


def matched_people(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """SELECT of the ids of every person a people-level exclusion matches."""
    person, company = t.people.alias(), t.companies.alias()
    scope = SqlScope(person=person, company=company)
    return (
        sa.select(person.c.id)
        .select_from(person.outerjoin(company, company.c.id == person.c.company_id))
        .where(
            person.c.workspace_id == workspace_id,
            compile_sql(exclusion.filter, scope=scope, ctx=Context(now=now)),
        )
    )


def matched_groups(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """SELECT of the linked-group ids of every company a company-level exclusion matches."""
    company = t.companies.alias()
    return sa.select(company.c.group_id).where(
        company.c.workspace_id == workspace_id,
        company.c.group_id.is_not(None),
        compile_sql(exclusion.filter, scope=SqlScope(company=company), ctx=Context(now=now)),
    )


def _union(selects: list[sa.Select[Any]]) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    if len(selects) == 1:
        return selects[0]
    if len(selects) <= _UNION_CHUNK:
        return sa.union_all(*selects)
    chunks: list[sa.Select[Any]] = [
        sa.select(sa.literal_column("*")).select_from(
            _union(selects[i : i + _UNION_CHUNK]).subquery()
        )
        for i in range(0, len(selects), _UNION_CHUNK)
    ]
    return sa.union_all(*chunks)


def any_matches(
    exclusions: list[ExclusionSpec],
    *,
    person: FromClause,
    company: FromClause,
    workspace_id: int,
    now: datetime,
    among: FromClause | None = None,
) -> ColumnElement[bool]:
    """True for a person row (with its company left-joined) matched by any of `exclusions`.

    `among`, a table of person ids (`id`), limits every rule's own query to those people:
    asking about a few people then never evaluates a rule over the whole workspace.
    """
    people_level = [e for e in exclusions if e.level is Level.PEOPLE]
    company_level = [e for e in exclusions if e.level is Level.COMPANY]
    parts: list[ColumnElement[bool]] = []
    if people_level:
        selects = [
            _within(matched_people(e, workspace_id=workspace_id, now=now), among, groups=False)
            for e in people_level
        ]
        parts.append(person.c.id.in_(_union(selects)))
    if company_level:
        selects = [
            _within(matched_groups(e, workspace_id=workspace_id, now=now), among, groups=True)
            for e in company_level
        ]
        parts.append(
            sa.and_(company.c.group_id.is_not(None), company.c.group_id.in_(_union(selects)))
        )
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
