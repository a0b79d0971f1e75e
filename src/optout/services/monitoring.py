"""Continuous monitoring (R14): when data about people changes, their active enrollments
are re-checked at once against every exclusion with `exclude_from_sequences` on.

Called in the same transaction as the change (a person or company edit, a new or
moved opportunity, a reply), so no propagation delay exists. Rules with the
toggle off never remove anyone mid-sequence (R15).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.index import groups_matched, people_matched
from optout.eligibility.model import ExclusionSpec
from optout.filters import Level
from optout.services import decision_index, fresh_rules
from optout.services.enforcement import Removal, end_enrollments
from optout.services.staging import analyzed, recheck_candidates, rule_hits, stage

# Rules per INSERT ... SELECT: SQLite refuses compound SELECTs of more than 500 terms.
_RULES_PER_STATEMENT = 200
# Up to this many active enrollments to re-check, their hits are read from the stored
# matches; more (an import, a sync) are asked of every rule in set-based SQL.
FEW_ENROLLMENTS = 500


def reached_among(
    exclusion: ExclusionSpec, *, workspace_id: int, among: sa.Select[Any], now: datetime
) -> sa.Select[Any]:
    """People of `among` that the exclusion reaches; the restriction is pushed inside, so a
    re-check of a few people never evaluates a rule over the whole workspace."""
    if exclusion.level is Level.PEOPLE:
        query = people_matched(exclusion, workspace_id=workspace_id, now=now)
        return query.where(query.selected_columns[0].in_(among))
    p, c = t.people.alias(), t.companies.alias()
    groups_of_among = (
        sa.select(c.c.group_id).join(p, p.c.company_id == c.c.id).where(p.c.id.in_(among))
    )
    groups = groups_matched(exclusion, workspace_id=workspace_id, now=now)
    groups = groups.where(groups.selected_columns[0].in_(groups_of_among))
    member, company = t.people.alias(), t.companies.alias()
    return (
        sa.select(member.c.id)
        .join(company, company.c.id == member.c.company_id)
        .where(member.c.id.in_(among), company.c.group_id.in_(groups))
    )


def recheck_people(
    db: Connection,
    *,
    workspace_id: int,
    people: sa.Select[Any] | Sequence[int],
    actor: str,
    now: datetime,
    cause: str,
) -> Removal:
    """End the active enrollments of `people` that an enforced exclusion now matches."""
    among = (
        people
        if isinstance(people, sa.Select)
        else sa.select(t.people.c.id).where(t.people.c.id.in_(list(people)))
    )
    enforced = [
        e
        for e in fresh_rules.all_specs(db, workspace_id=workspace_id)
        if e.enabled and e.exclude_from_sequences
    ]
    if not enforced:
        return Removal(0, 0)
    e, s, r = t.enrollments, t.sequences, t.rulesets
    # Staged, so that each rule's query below reads a flat table: nesting the candidate
    # query inside a union of a thousand rules overflows SQLite's parser stack.
    found = stage(
        db,
        recheck_candidates,
        sa.select(e.c.id.label("enrollment_id"), e.c.person_id)
        .join(s, s.c.id == e.c.sequence_id)
        .join(r, r.c.id == s.c.ruleset_id)
        .where(
            e.c.workspace_id == workspace_id,
            e.c.person_id.in_(among),
            e.c.status.in_(t.ACTIVE_STATUSES),
            r.c.exclusions_enabled.is_(True),
        ),
    )
    if found == 0:
        return Removal(0, 0)
    rule_hits.create(db, checkfirst=True)
    db.execute(rule_hits.delete())
    if found <= FEW_ENROLLMENTS:
        _stored_hits(db, workspace_id=workspace_id, enforced=enforced, now=now)
    else:
        _live_hits(db, workspace_id=workspace_id, enforced=enforced, now=now)
    analyzed(db, rule_hits)
    return end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=sa.select(
            rule_hits.c.enrollment_id, sa.func.min(rule_hits.c.exclusion_id).label("exclusion_id")
        ).group_by(rule_hits.c.enrollment_id),
        status="unenrolled",
        reason=f"now matches an exclusion that applies in every sequence ({cause})",
        rule="exclusion_monitor",
        actor=actor,
        now=now,
    )


def _stored_hits(
    db: Connection, *, workspace_id: int, enforced: list[ExclusionSpec], now: datetime
) -> None:
    """The hits of a few candidates (a reply, one edit), read from the decision index's
    stored matches, which `fresh_rules.all_specs` has just brought up to date: a few
    indexed reads instead of one query per enforced rule."""
    cand = recheck_candidates
    rows = db.execute(sa.select(cand.c.enrollment_id, cand.c.person_id)).all()
    matches = decision_index.matches_of(
        db,
        workspace_id=workspace_id,
        person_ids=sorted({person_id for _, person_id in rows}),
        exclusions=enforced,
        now=now,
    )
    hits = [
        {"enrollment_id": enrollment_id, "exclusion_id": exclusion_id}
        for enrollment_id, person_id in rows
        for exclusion_id in matches[person_id]
    ]
    if hits:
        db.execute(rule_hits.insert(), hits)


def _live_hits(
    db: Connection, *, workspace_id: int, enforced: list[ExclusionSpec], now: datetime
) -> None:
    """The hits of many candidates (an import, a sync), every enforced rule asked in SQL."""
    cand = recheck_candidates
    enrolled = sa.select(cand.c.person_id)
    for i in range(0, len(enforced), _RULES_PER_STATEMENT):
        hits = [
            sa.select(
                cand.c.enrollment_id, sa.literal(rule.id, sa.Integer).label("exclusion_id")
            ).where(
                cand.c.person_id.in_(
                    reached_among(rule, workspace_id=workspace_id, among=enrolled, now=now)
                )
            )
            for rule in enforced[i : i + _RULES_PER_STATEMENT]
        ]
        db.execute(
            rule_hits.insert().from_select(
                ["enrollment_id", "exclusion_id"], sa.union_all(*hits) if len(hits) > 1 else hits[0]
            )
        )
