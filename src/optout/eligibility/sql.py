"""The eligibility checks as one SQL query over every person at once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

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


def eligible_people(situation: Situation) -> sa.Select[Any]:
    """SELECT of the ids of every person of the workspace the situation allows."""
    person, company = t.people, t.companies
    env = SqlEnv(person=person, company=company)
    return (
        sa.select(person.c.id)
        .select_from(person.outerjoin(company, company.c.id == person.c.company_id))
        .where(person.c.workspace_id == situation.workspace_id, sa.not_(blocked(env, situation)))
    )
