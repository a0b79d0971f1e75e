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
from optout.filters.ast import Node
from optout.filters.evaluate import Trace, evaluate
from optout.filters.fields import Level
from optout.filters.holds import holds
from optout.filters.operators import Context
from optout.filters.sql import SqlScope, compile_sql
from optout.filters.text import to_text

# The companies of a person's linked group, read by a company-level rule asked on the
# person row. Made once: building an alias proxies every column of its table.
_GROUP = t.companies.alias("rule_group")
# `on_the_row`'s expressions, by the rule's filter object (parsed once per distinct text),
# the rows and the instant: one pass asks the same clock rules about each of its
# sequences, for the enrollment and again for its refusals.
_ASKED_ON_THE_ROW: dict[tuple[Any, ...], tuple[Node, ColumnElement[bool]]] = {}
_KEPT = 2048


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
    A rule whose stored rows do not answer at `now` (a clock rule not yet moved there, a
    rule not stored) is read through the stored rows corrected over the workspace; with
    `among`, it is evaluated on the asked rows themselves (`on_the_row`).
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
            if among is not None:
                probes.append(on_the_row(rule, person, company, workspace_id, now))
                continue
            matched = index.matched(rule, workspace_id=workspace_id, now=now)
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


def on_the_row(
    rule: ExclusionSpec, person: FromClause, company: FromClause, workspace_id: int, now: datetime
) -> ColumnElement[bool]:
    """A rule whose stored rows do not answer at `now` (its clock moved since, or it is
    not stored), asked about the people of `among` alone: its filter evaluated on the
    person row itself (a company-level rule: on the companies of the row's group), as
    the index would compute it from scratch, instead of the stored rows corrected over
    the whole workspace."""
    key = (id(rule.filter), rule.level, id(person), id(company), workspace_id, now)
    found = _ASKED_ON_THE_ROW.get(key)
    if found is not None and found[0] is rule.filter:
        return found[1]
    if len(_ASKED_ON_THE_ROW) >= _KEPT:
        _ASKED_ON_THE_ROW.clear()
    expression = _on_the_row(rule, person, company, workspace_id, now)
    _ASKED_ON_THE_ROW[key] = (rule.filter, expression)
    return expression


def _on_the_row(
    rule: ExclusionSpec, person: FromClause, company: FromClause, workspace_id: int, now: datetime
) -> ColumnElement[bool]:
    ctx = Context(now=now)
    if rule.level is Level.PEOPLE:
        return compile_sql(rule.filter, scope=SqlScope(person=person, company=company), ctx=ctx)
    g = _GROUP
    return sa.exists(
        sa.select(1).where(
            g.c.group_id == company.c.group_id,
            g.c.workspace_id == workspace_id,
            compile_sql(rule.filter, scope=SqlScope(company=g), ctx=ctx),
        )
    )
