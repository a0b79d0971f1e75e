"""The eligibility checks as one SQL query over every person at once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from optout.db import tables as t
from optout.eligibility.checks import ExclusionTier, SqlEnv, exclusions_sql
from optout.eligibility.model import ExclusionSpec, Situation
from optout.eligibility.precedence import PRECEDENCE


def blocked(env: SqlEnv, situation: Situation) -> ColumnElement[bool]:
    """True for a person row that some applicable check blocks. The exclusions of both
    tiers that block are asked as one set, so each row probes each level's matches once."""
    parts: list[ColumnElement[bool]] = []
    exclusions: list[ExclusionSpec] = []
    for rule in PRECEDENCE:
        if situation.purpose not in rule.purposes:
            continue
        if isinstance(rule.check, ExclusionTier):
            exclusions += rule.check.applying(situation)
        elif (predicate := rule.check.blocks_sql(env, situation)) is not None:
            parts.append(predicate)
    if (matched := exclusions_sql(exclusions, env, situation)) is not None:
        parts.append(matched)
    return sa.or_(*parts) if parts else sa.false()


def eligible_people(situation: Situation, among: FromClause | None = None) -> sa.Select[Any]:
    """SELECT of the ids of every person of the workspace the situation allows; with
    `among` (a table of person ids), only of those people, and every rule is asked about
    them alone. The person's company is joined only when a check reads it."""
    person, company = t.people, t.companies
    env = SqlEnv(person=person, company=company, among=among)
    allowed = sa.not_(blocked(env, situation))
    rows: FromClause = person
    if _reads(allowed, company):
        rows = person.outerjoin(company, company.c.id == person.c.company_id)
    query = (
        sa.select(person.c.id)
        .select_from(rows)
        .where(person.c.workspace_id == situation.workspace_id, allowed)
    )
    if among is not None:
        query = query.where(person.c.id.in_(sa.select(among.c.id)))
    return query


def _reads(expression: ColumnElement[bool], table: sa.Table) -> bool:
    """Whether `expression` reads a column of `table` itself, not of an alias of it (the
    subqueries of the checks alias the tables they read on their own)."""
    return any(
        isinstance(element, sa.Column) and element.table is table
        for element in visitors.iterate(expression)
    )
