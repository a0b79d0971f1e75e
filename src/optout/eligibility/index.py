"""The decision index, its SQL forms: what a rule matches from scratch (`live`), and what
it matches at an instant read from the stored rows (`matched`). Storage and upkeep are
`optout.services.decision_index`, whose docstring describes the design."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.filters.ast import Node, conditions
from optout.filters.fields import COMPANY, OPPORTUNITY, PERSON, PERSON_OPPORTUNITY, Field, Level
from optout.filters.fields import lookup as lookup_field
from optout.filters.memo import by_node
from optout.filters.operators import Context
from optout.filters.sql import SqlScope, compile_sql

CLOCK_OPERATORS = frozenset({"within_last_days", "older_than_days"})
# The rows the from-scratch forms read, made once: building an alias proxies every column
# of its table, which cost more than the rest of a rule's statement. Only `live_people` and
# `live_groups` read them, and no statement of theirs nests another, so sharing them can
# never correlate one statement's subquery with another's rows.
_LIVE_PERSON = t.people.alias("live_person")
_LIVE_COMPANY = t.companies.alias("live_company")
_LIVE_GROUP = t.companies.alias("live_group")
# SQLite refuses compound SELECTs of more than 500 terms; stay well below.
_RULES_PER_STATEMENT = 200


# The from-scratch forms: what a rule matches, evaluated now over the stored rows.


def live_people(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """SELECT of the ids of every person a people-level exclusion matches at `now`."""
    person, company = _LIVE_PERSON, _LIVE_COMPANY
    scope = SqlScope(person=person, company=company)
    return (
        sa.select(person.c.id)
        .select_from(person.outerjoin(company, company.c.id == person.c.company_id))
        .where(
            person.c.workspace_id == workspace_id,
            compile_sql(exclusion.filter, scope=scope, ctx=Context(now=now)),
        )
    )


def live_groups(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """SELECT of the group ids of every company a company-level exclusion matches at `now`."""
    company = _LIVE_GROUP
    return sa.select(company.c.group_id).where(
        company.c.workspace_id == workspace_id,
        company.c.group_id.is_not(None),
        compile_sql(exclusion.filter, scope=SqlScope(company=company), ctx=Context(now=now)),
    )


def live(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    form = live_people if exclusion.level is Level.PEOPLE else live_groups
    return form(exclusion, workspace_id=workspace_id, now=now)


# Reading.


def clock_conditions(exclusion: ExclusionSpec) -> list[tuple[Field, int]]:
    """The (field, days) of every condition of the rule that moves with the clock."""
    return list(_clock_conditions(exclusion.filter))


@by_node
def _clock_conditions(node: Node) -> tuple[tuple[Field, int], ...]:
    return tuple(
        (lookup_field(c.field), int(str(c.value)))
        for c in conditions(node)
        if c.op in CLOCK_OPERATORS
    )


def _band(column: Any, days: int, then: datetime, now: datetime) -> Any:
    """True for a date that lies between the cutoffs of `then` and `now`: a condition on
    it may answer differently at the two instants."""
    low, high = sorted((then - timedelta(days=days), now - timedelta(days=days)))
    return sa.and_(column >= low, column < high)


def moved_keys(
    exclusion: ExclusionSpec, *, workspace_id: int, then: datetime, now: datetime
) -> sa.Select[Any] | None:
    """People (or groups, for a company-level rule) whose answer may differ between the
    instants `then` and `now`: a date of theirs lies between the two cutoffs."""
    if then == now:
        return None
    selects: list[sa.Select[Any]] = []
    people_level = exclusion.level is Level.PEOPLE
    for field, days in clock_conditions(exclusion):
        relation = field.relation
        if relation is PERSON:
            p = t.people.alias()
            selects.append(
                sa.select(p.c.id).where(
                    p.c.workspace_id == workspace_id, _band(field.sql(p), days, then, now)
                )
            )
            continue
        if relation is PERSON_OPPORTUNITY:
            o, oc = t.opportunities.alias(), t.opportunity_contacts.alias()
            selects.append(
                sa.select(oc.c.person_id)
                .join(o, o.c.id == oc.c.opportunity_id)
                .where(o.c.workspace_id == workspace_id, _band(field.sql(o), days, then, now))
            )
            continue
        c = t.companies.alias()
        if relation is COMPANY:
            banded = sa.select(c.c.id).where(
                c.c.workspace_id == workspace_id, _band(field.sql(c), days, then, now)
            )
        else:
            assert relation is OPPORTUNITY
            o = t.opportunities.alias()
            banded = sa.select(o.c.company_id).where(
                o.c.workspace_id == workspace_id, _band(field.sql(o), days, then, now)
            )
        if people_level:
            p = t.people.alias()
            selects.append(sa.select(p.c.id).where(p.c.company_id.in_(banded)))
        else:
            selects.append(
                sa.select(c.c.group_id).where(c.c.id.in_(banded), c.c.group_id.is_not(None))
            )
    if not selects:
        return None
    return selects[0] if len(selects) == 1 else sa.select(sa.union(*selects).subquery().c[0])


def stored_table(level: Level) -> tuple[sa.Table, sa.Column[int]]:
    if level is Level.PEOPLE:
        return t.exclusion_matches, t.exclusion_matches.c.person_id
    return t.exclusion_group_matches, t.exclusion_group_matches.c.group_id


def matched(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """SELECT of the people (people-level) or groups (company-level) the exclusion matches
    at `now`, read from the stored matches (see the module docstring for the clock)."""
    if exclusion.matched_at is None or exclusion.id <= 0:
        return live(exclusion, workspace_id=workspace_id, now=now)
    table, key = stored_table(exclusion.level)
    stored = sa.select(key).where(table.c.exclusion_id == exclusion.id)
    moved = moved_keys(exclusion, workspace_id=workspace_id, then=exclusion.matched_at, now=now)
    if moved is None:
        return stored
    fresh = live(exclusion, workspace_id=workspace_id, now=now)
    return sa.select(
        sa.union_all(
            stored.where(key.not_in(moved)),
            fresh.where(fresh.selected_columns[0].in_(moved)),
        )
        .subquery()
        .c[0]
    )


def people_matched(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    assert exclusion.level is Level.PEOPLE
    return matched(exclusion, workspace_id=workspace_id, now=now)


def groups_matched(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    assert exclusion.level is Level.COMPANY
    return matched(exclusion, workspace_id=workspace_id, now=now)


def matching_ids(
    exclusions: Iterable[ExclusionSpec], *, level: Level, now: datetime
) -> tuple[list[int], list[ExclusionSpec]]:
    """Split rules of one level into those whose stored rows answer at `now` as they are
    (their ids) and the others (to be read through `matched`)."""
    plain: list[int] = []
    others: list[ExclusionSpec] = []
    for e in exclusions:
        if e.level is not level:
            continue
        if (
            e.matched_at is not None
            and e.id > 0
            and (e.matched_at == now or not clock_conditions(e))
        ):
            plain.append(e.id)
        else:
            others.append(e)
    return plain, others
