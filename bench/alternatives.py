"""Other shapes of the project's eligible-set SQL, measured next to it to back the proposals
in BENCHMARKS.md. Built from the project's own pieces (`compile_sql`, `matched_people`,
`matched_groups`, the checks); only the way the exclusions are combined differs.

- `project`: as shipped: one SELECT per exclusion, UNION ALL, per tier.
- `one_pass`: every exclusion of both tiers in one predicate: list rules on an indexed
  column (`company.domain in`, `person.email in`) stay one indexed SELECT each, and
  every other rule of a level is OR-ed into one SELECT: one pass over companies, one
  over people, whatever the number of rules. Tiers 3 and 4 are combined when both
  block (at enrollment), so each pass happens once, not once per tier.
- stored matches: who the applying rules match, kept in two tables (people, groups), so
  the eligible set is one scan of people with index probes (`eligible_precomputed`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from optout.db import tables as t
from optout.eligibility.checks import (
    DefaultExclusions,
    EnforcedExclusions,
    SqlEnv,
)
from optout.eligibility.matching import _union, matched_groups, matched_people
from optout.eligibility.model import ExclusionSpec, Situation
from optout.eligibility.precedence import PRECEDENCE
from optout.filters import Level
from optout.filters.ast import Condition, to_json
from optout.filters.operators import Context
from optout.filters.sql import SqlScope, compile_sql

# Single-condition list rules whose column has an index of its own level.
_INDEXED = {
    Level.PEOPLE: ("person.email", "person.email_domain"),
    Level.COMPANY: ("company.domain",),
}


def indexed_list(exclusion: ExclusionSpec) -> bool:
    node = exclusion.filter
    return (
        isinstance(node, Condition)
        and node.op in ("in", "eq")
        and node.field in _INDEXED[exclusion.level]
    )


def one_pass_matches(
    exclusions: list[ExclusionSpec],
    *,
    person: FromClause,
    company: FromClause,
    workspace_id: int,
    now: datetime,
) -> ColumnElement[bool]:
    """True for a person row (company left-joined) matched by any of `exclusions`."""
    ctx = Context(now=now)
    parts: list[ColumnElement[bool]] = []
    people = [e for e in exclusions if e.level is Level.PEOPLE]
    if people:
        selects = [
            matched_people(e, workspace_id=workspace_id, now=now) for e in people if indexed_list(e)
        ]
        rest = [e for e in people if not indexed_list(e)]
        if rest:
            who, at = t.people.alias(), t.companies.alias()
            scope = SqlScope(person=who, company=at)
            selects.append(
                sa.select(who.c.id)
                .select_from(who.outerjoin(at, at.c.id == who.c.company_id))
                .where(
                    who.c.workspace_id == workspace_id,
                    sa.or_(*(compile_sql(e.filter, scope=scope, ctx=ctx) for e in rest)),
                )
            )
        parts.append(person.c.id.in_(_union(selects)))
    companies = [e for e in exclusions if e.level is Level.COMPANY]
    if companies:
        selects = [
            matched_groups(e, workspace_id=workspace_id, now=now)
            for e in companies
            if indexed_list(e)
        ]
        rest = [e for e in companies if not indexed_list(e)]
        if rest:
            other = t.companies.alias()
            scope = SqlScope(company=other)
            selects.append(
                sa.select(other.c.group_id).where(
                    other.c.workspace_id == workspace_id,
                    other.c.group_id.is_not(None),
                    sa.or_(*(compile_sql(e.filter, scope=scope, ctx=ctx) for e in rest)),
                )
            )
        parts.append(
            sa.and_(company.c.group_id.is_not(None), company.c.group_id.in_(_union(selects)))
        )
    return sa.or_(*parts) if parts else sa.false()


def applying(situation: Situation) -> list[ExclusionSpec]:
    """The exclusions that block in this situation, both tiers (R16 levels 3 and 4)."""
    if not situation.sequence.ruleset.exclusions_enabled:
        return []
    out: list[ExclusionSpec] = []
    for tier in (EnforcedExclusions(), DefaultExclusions()):
        out += [e for e in tier.candidates(situation) if tier.not_applying(e, situation) is None]
    return out


def eligible_one_pass(situation: Situation) -> sa.Select[Any]:
    """`optout.eligibility.sql.eligible_people` with the exclusions in one predicate."""
    person, company = t.people, t.companies
    env = SqlEnv(person=person, company=company)
    parts = []
    for rule in PRECEDENCE:
        if situation.purpose not in rule.purposes:
            continue
        if isinstance(rule.check, EnforcedExclusions | DefaultExclusions):
            continue
        predicate = rule.check.blocks_sql(env, situation)
        if predicate is not None:
            parts.append(predicate)
    excluded = applying(situation)
    if excluded:
        parts.append(
            one_pass_matches(
                excluded,
                person=person,
                company=company,
                workspace_id=situation.workspace_id,
                now=situation.now,
            )
        )
    blocked = sa.or_(*parts) if parts else sa.false()
    return (
        sa.select(person.c.id)
        .select_from(person.outerjoin(company, company.c.id == person.c.company_id))
        .where(person.c.workspace_id == situation.workspace_id, sa.not_(blocked))
    )


# Precomputed matches ----------------------------------------------------------------------

MATCHED_PEOPLE = sa.Table(
    "bench_matched_people", sa.MetaData(), sa.Column("person_id", sa.Integer, primary_key=True)
)
MATCHED_GROUPS = sa.Table(
    "bench_matched_groups", sa.MetaData(), sa.Column("group_id", sa.Integer, primary_key=True)
)


def materialize(db: Any, situation: Situation) -> tuple[int, int]:
    """Store who the applying exclusions match, as a maintained table would hold it:
    people matched by a people-level rule, groups matched by a company-level rule.

    Filled here in one go from the hand-written sets (`bench.handsql`), the fastest way
    measured; kept up to date, each rule save or data change would redo only its part."""
    from bench.handsql import Rule, Sql, excluded_sets

    sql = Sql(postgresql=db.dialect.name == "postgresql")
    rules = [Rule(e.level.value, to_json(e.filter)) for e in applying(situation)]
    groups, persons = excluded_sets(rules, sql, sql.bind(situation.workspace_id), situation.now)
    for table in (MATCHED_PEOPLE, MATCHED_GROUPS):
        table.drop(db, checkfirst=True)
        table.create(db)
    db.execute(sa.text(f"INSERT INTO {MATCHED_PEOPLE.name} (person_id) {persons}"), sql.params)
    db.execute(
        sa.text(
            f"INSERT INTO {MATCHED_GROUPS.name} (group_id) SELECT DISTINCT group_id "
            f"FROM ({groups}) g WHERE group_id IS NOT NULL"
        ),
        sql.params,
    )
    count = sa.func.count()
    return (
        int(db.scalar(sa.select(count).select_from(MATCHED_PEOPLE))),
        int(db.scalar(sa.select(count).select_from(MATCHED_GROUPS))),
    )


def eligible_precomputed(situation: Situation) -> sa.Select[Any]:
    """The eligible set against stored matches: one scan of people, index probes only."""
    person, company = t.people, t.companies
    env = SqlEnv(person=person, company=company)
    parts = [
        predicate
        for rule in PRECEDENCE
        if situation.purpose in rule.purposes
        and not isinstance(rule.check, EnforcedExclusions | DefaultExclusions)
        and (predicate := rule.check.blocks_sql(env, situation)) is not None
    ]
    parts.append(person.c.id.in_(sa.select(MATCHED_PEOPLE.c.person_id)))
    parts.append(
        sa.and_(
            company.c.group_id.is_not(None),
            company.c.group_id.in_(sa.select(MATCHED_GROUPS.c.group_id)),
        )
    )
    return (
        sa.select(person.c.id)
        .select_from(person.outerjoin(company, company.c.id == person.c.company_id))
        .where(person.c.workspace_id == situation.workspace_id, sa.not_(sa.or_(*parts)))
    )
