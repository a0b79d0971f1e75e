"""The rows an exclusion reaches: people, companies, and the enrollments a save removes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from optout.db import tables as t
from optout.eligibility.index import groups_matched, people_matched
from optout.eligibility.model import ExclusionSpec
from optout.filters import Level


def people_reached(exclusion: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """Ids of every person the exclusion matches; at company level, everyone at a matched
    company or at a company linked to one (R12)."""
    if exclusion.level is Level.PEOPLE:
        return people_matched(exclusion, workspace_id=workspace_id, now=now)
    p, c = t.people.alias(), t.companies.alias()
    return (
        sa.select(p.c.id)
        .join(c, c.c.id == p.c.company_id)
        .where(
            p.c.workspace_id == workspace_id,
            c.c.group_id.in_(groups_matched(exclusion, workspace_id=workspace_id, now=now)),
        )
    )


def companies_reached(
    exclusion: ExclusionSpec, *, workspace_id: int, now: datetime
) -> sa.Select[Any]:
    """Ids of the companies a company-level exclusion covers, linked ones included."""
    c = t.companies.alias()
    return sa.select(c.c.id).where(
        c.c.workspace_id == workspace_id,
        c.c.group_id.in_(groups_matched(exclusion, workspace_id=workspace_id, now=now)),
    )


def removable_enrollments(
    exclusion: ExclusionSpec,
    *,
    workspace_id: int,
    now: datetime,
    reached: sa.Select[Any] | None = None,
) -> sa.Select[Any]:
    """Active enrollments that saving `exclusion` with unenroll-on-save removes (R13):
    people it matches (`reached`, when they are already worked out), in sequences whose
    ruleset applies exclusions, except enrollments from an audience that switches this
    (not enforced) exclusion off (R16)."""
    e, s, r = t.enrollments, t.sequences, t.rulesets
    if reached is None:
        reached = people_reached(exclusion, workspace_id=workspace_id, now=now)
    matched = e.c.person_id.in_(reached)
    query = (
        sa.select(e.c.id.label("enrollment_id"), sa.literal(exclusion.id).label("exclusion_id"))
        .join(s, s.c.id == e.c.sequence_id)
        .join(r, r.c.id == s.c.ruleset_id)
        .where(
            e.c.workspace_id == workspace_id,
            e.c.status.in_(t.ACTIVE_STATUSES),
            r.c.exclusions_enabled.is_(True),
            matched,
        )
    )
    if not exclusion.exclude_from_sequences:
        switch = t.audience_exclusion_switches
        query = query.where(
            sa.or_(
                e.c.audience_id.is_(None),
                e.c.source != "audience",
                e.c.audience_id.not_in(
                    sa.select(switch.c.audience_id).where(switch.c.exclusion_id == exclusion.id)
                ),
            )
        )
    return query


def people_no_longer_reached(
    before: ExclusionSpec, after: ExclusionSpec, *, workspace_id: int, now: datetime
) -> sa.Select[Any]:
    """Ids of the people `before` reaches and `after` (the same rule, edited) does not:
    whom an edit stops covering."""
    dropped = sa.except_(
        people_reached(before, workspace_id=workspace_id, now=now),
        people_reached(after, workspace_id=workspace_id, now=now),
    ).subquery()
    return sa.select(next(iter(dropped.c)).label("id"))
