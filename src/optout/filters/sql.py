"""Compile a validated filter to one SQLAlchemy boolean expression.

The caller supplies the aliases the filter reads (`SqlScope`): the person row
and the company row for a people-level filter, the company row for a
company-level one. Collections become correlated EXISTS subqueries. There is no
special case for any particular field: everything comes from the field
registry and the operator table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from optout.db import tables as t
from optout.filters.ast import All, Condition, Node, Not
from optout.filters.fields import COMPANY, OPPORTUNITY, PERSON, PERSON_OPPORTUNITY, FieldType
from optout.filters.fields import lookup as lookup_field
from optout.filters.grouping import CollectionGroup, partition
from optout.filters.operators import OPERATORS, Context
from optout.filters.sqlfunc import ascii_lower


@dataclass(frozen=True)
class SqlScope:
    person: FromClause | None = None
    company: FromClause | None = None


def compile_sql(node: Node, *, scope: SqlScope, ctx: Context) -> ColumnElement[bool]:
    """One boolean SQL expression equivalent to `evaluate(node, ...)` for every row."""
    if isinstance(node, Condition):
        return _group(CollectionGroup(lookup_field(node.field).relation, (node,)), scope, ctx)
    if isinstance(node, Not):
        return sa.not_(compile_sql(node.item, scope=scope, ctx=ctx))
    parts = [
        _group(item, scope, ctx) if isinstance(item, CollectionGroup)
        else compile_sql(item, scope=scope, ctx=ctx)
        for item in (partition(node.items) if isinstance(node, All) else node.items)
    ]  # fmt: skip
    return sa.and_(*parts) if isinstance(node, All) else sa.or_(*parts)


def _condition(cond: Condition, alias: FromClause, ctx: Context) -> ColumnElement[bool]:
    field = lookup_field(cond.field)
    column = field.sql(alias)
    if field.type is FieldType.TEXT:
        column = ascii_lower(column)
    return OPERATORS[cond.op].sql(column, cond.value, ctx)


def _group(group: CollectionGroup, scope: SqlScope, ctx: Context) -> ColumnElement[bool]:
    relation = group.relation
    if relation.collection:
        return _COLLECTIONS[relation.name](
            scope, lambda alias: sa.and_(*(_condition(c, alias, ctx) for c in group.conditions))
        )
    alias = scope.person if relation is PERSON else scope.company if relation is COMPANY else None
    if alias is None:
        raise ValueError(f"no {relation.name} row in this scope")
    return sa.and_(*(_condition(c, alias, ctx) for c in group.conditions))


Build = Callable[[FromClause], ColumnElement[bool]]


def _company_opportunities(scope: SqlScope, build: Build) -> ColumnElement[bool]:
    if scope.company is None:
        raise ValueError("no company row in this scope")
    opp = t.opportunities.alias()
    return sa.exists(
        sa.select(1).select_from(opp).where(opp.c.company_id == scope.company.c.id, build(opp))
    )


def _person_opportunities(scope: SqlScope, build: Build) -> ColumnElement[bool]:
    if scope.person is None:
        raise ValueError("no person row in this scope")
    opp, link = t.opportunities.alias(), t.opportunity_contacts.alias()
    return sa.exists(
        sa.select(1)
        .select_from(link.join(opp, opp.c.id == link.c.opportunity_id))
        .where(link.c.person_id == scope.person.c.id, build(opp))
    )


_COLLECTIONS: dict[str, Callable[[SqlScope, Build], ColumnElement[bool]]] = {
    OPPORTUNITY.name: _company_opportunities,
    PERSON_OPPORTUNITY.name: _person_opportunities,
}


def people_scope() -> tuple[sa.Select[Any], SqlScope]:
    """A SELECT of people ids with their company joined, and the scope to compile against."""
    person, company = t.people, t.companies
    query = sa.select(person.c.id).select_from(
        person.outerjoin(company, company.c.id == person.c.company_id)
    )
    return query, SqlScope(person=person, company=company)
