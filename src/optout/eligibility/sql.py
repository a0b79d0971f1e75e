"""The eligibility checks as one SQL query over every person at once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from optout.db import tables as t
from optout.eligibility.checks import SqlEnv
from optout.eligibility.model import Situation
from optout.eligibility.precedence import PRECEDENCE


def blocked(env: SqlEnv, situation: Situation) -> ColumnElement[bool]:
    """True for a person row that some applicable check blocks."""
    parts = [
        predicate
        for rule in PRECEDENCE
        if situation.purpose in rule.purposes
        and (predicate := rule.check.blocks_sql(env, situation)) is not None
    ]
    return sa.or_(*parts) if parts else sa.false()


def eligible_people(situation: Situation, among: FromClause | None = None) -> sa.Select[Any]:
    """SELECT of the ids of every person of the workspace the situation allows; with
    `among` (a table of person ids), only of those people, and every rule is asked about
    them alone."""
    person, company = t.people, t.companies
    env = SqlEnv(person=person, company=company, among=among)
    query = (
        sa.select(person.c.id)
        .select_from(person.outerjoin(company, company.c.id == person.c.company_id))
        .where(person.c.workspace_id == situation.workspace_id, sa.not_(blocked(env, situation)))
    )
    if among is not None:
        query = query.where(person.c.id.in_(sa.select(among.c.id)))
    return query
