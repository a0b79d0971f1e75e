"""Audience members, stored and kept true like an exclusion's matches (the decision
index), for the audiences a sequence enrolls from by itself.

What is stored. `audience_matches` holds the people an audience (its filter and its
persona's title words) takes, for every audience whose `matched_at` is set: the ones an
actively enrolling sequence reads (`store`). `matched_at` is the instant the rows hold
for, exactly as for an exclusion: a filter on a relative date moves with the clock, and
`advance` writes the band of rows that may have moved down again.

Kept true. The writes that queue people for the exclusions' re-match (database triggers
on people, companies, deals and contact roles) re-match their audience memberships in
the same flush (`rematch`, called by `decision_index.flush`); an audience or persona
edit re-matches everyone in one set-based pass (`store`).

What a move causes. A person who comes to be a member is queued for each actively
enrolling sequence of the audience (`enrollment_queue.queue_members`); one who leaves
is taken out of the queue and out of the sequence's not-enrolled view. Nobody is enrolled
here: the queue is emptied by the automatic enrollment pass.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.db.inserts import insert_ignoring_duplicates
from optout.eligibility.checks import persona_filter
from optout.eligibility.index import moved_keys
from optout.eligibility.model import ExclusionSpec
from optout.filters import Level, Node
from optout.filters.ast import All, conditions
from optout.filters.holds import holds
from optout.filters.operators import Context
from optout.filters.sql import compile_sql, people_scope
from optout.filters.sqlfunc import in_list
from optout.services import enrollment_queue, subjects
from optout.services.filters import load
from optout.services.staging import id_table, stage

# At most this many people are re-matched in Python, each against every stored audience
# (one write, a webhook, a CRM sync page of 200); more in set-based SQL, a handful of
# statements per audience.
FEW = 250

# The members of an audience just computed from scratch (`store`), and the differences
# with its stored rows: who joins, who leaves. Each is computed once and read by the few
# statements that need it.
fresh_members = id_table("optout_fresh_members")
joiners = id_table("optout_audience_joiners")
leavers = id_table("optout_audience_leavers")


@dataclass(frozen=True)
class StoredAudience:
    id: int
    node: Node | None  # its filter and persona together; None: everyone
    matched_at: datetime

    def reads_company(self) -> bool:
        return self.node is not None and any(
            c.field.startswith("company.") for c in conditions(self.node)
        )

    def reads(self, fields: Collection[str]) -> bool:
        return self.node is not None and any(c.field in fields for c in conditions(self.node))

    def as_rule(self) -> ExclusionSpec:
        """The audience in the shape the index's clock forms read."""
        assert self.node is not None
        return ExclusionSpec(
            id=self.id,
            name="",
            level=Level.PEOPLE,
            filter=self.node,
            enabled=True,
            exclude_from_sequences=False,
            matched_at=self.matched_at,
        )


def stored(db: Connection, *, workspace_id: int) -> list[StoredAudience]:
    """The workspace's audiences whose members are stored. Read on every flush: the filter
    and the persona's words are read as their JSON text, and an audience whose row is
    unchanged is the same object as at the last reading (its filter not built again)."""
    out = []
    for row in db.execute(_STORED, {"workspace_id": workspace_id}):
        key = tuple(row)
        found = _KEPT.get(key)
        if found is None:
            audience_id, filter_, include, exclude, matched_at = row
            found = StoredAudience(
                id=audience_id,
                node=_node(
                    None if filter_ in (None, "null") else filter_,
                    _words(include),
                    _words(exclude),
                ),
                matched_at=matched_at,
            )
            if len(_KEPT) >= 1024:
                _KEPT.clear()
            _KEPT[key] = found
        out.append(found)
    return out


_KEPT: dict[tuple[Any, ...], StoredAudience] = {}
_STORED = (
    sa.select(
        t.audiences.c.id,
        sa.cast(t.audiences.c.filter, sa.Text),
        sa.cast(t.personas.c.include_keywords, sa.Text),
        sa.cast(t.personas.c.exclude_keywords, sa.Text),
        t.audiences.c.matched_at,
    )
    .outerjoin(t.personas, t.personas.c.id == t.audiences.c.persona_id)
    .where(
        t.audiences.c.workspace_id == sa.bindparam("workspace_id"),
        t.audiences.c.matched_at.is_not(None),
    )
    .order_by(t.audiences.c.id)
)


def _words(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text) or ()) if text else ()


def _node(filter_: Any, include: Sequence[str], exclude: Sequence[str]) -> Node | None:
    parts = [
        node
        for node in (
            load(filter_, Level.PEOPLE) if filter_ is not None else None,
            persona_filter(tuple(include), tuple(exclude)),
        )
        if node is not None
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else All(tuple(parts))


def members(audience: StoredAudience, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """SELECT of the ids of the audience's members at `now`, from scratch."""
    query, scope = people_scope()
    query = query.where(t.people.c.workspace_id == workspace_id)
    if audience.node is not None:
        query = query.where(compile_sql(audience.node, scope=scope, ctx=Context(now=now)))
    return query


def store(db: Connection, *, workspace_id: int, audience_id: int, now: datetime) -> None:
    """Compute an audience's members from scratch at `now` and keep them from then on (a
    sequence starts enrolling from it, or its filter or persona changed). Members new to
    a stored audience are queued for its actively enrolling sequences; leavers are taken
    out of their queue and not-enrolled view.

    The filter is evaluated over the workspace once: the fresh members are staged, and
    the joiners and leavers are the differences between the staged and the stored rows."""
    a, am = t.audiences, t.audience_matches
    was_stored = db.scalar(sa.select(a.c.matched_at).where(a.c.id == audience_id)) is not None
    db.execute(a.update().where(a.c.id == audience_id).values(matched_at=now))
    (audience,) = [s for s in stored(db, workspace_id=workspace_id) if s.id == audience_id]
    fresh = members(audience, workspace_id=workspace_id, now=now)
    if not was_stored:
        db.execute(
            insert_ignoring_duplicates(db, am).from_select(
                ["audience_id", "person_id"],
                fresh.with_only_columns(sa.literal(audience_id, sa.Integer), t.people.c.id),
            )
        )
        return
    stage(db, fresh_members, fresh.with_only_columns(t.people.c.id.label("id")))
    f, mine = fresh_members, am.c.audience_id == audience_id
    stage(
        db,
        joiners,
        sa.select(f.c.id).where(~sa.exists(sa.select(1).where(mine, am.c.person_id == f.c.id))),
    )
    stage(
        db,
        leavers,
        sa.select(am.c.person_id.label("id")).where(
            mine, ~sa.exists(sa.select(1).where(f.c.id == am.c.person_id))
        ),
    )
    enrollment_queue.queue_members(
        db,
        workspace_id=workspace_id,
        audience_id=audience_id,
        people=sa.select(joiners.c.id),
        now=now,
    )
    enrollment_queue.forget_leavers(db, audience_id=audience_id, people=sa.select(leavers.c.id))
    db.execute(am.delete().where(mine, am.c.person_id.in_(sa.select(leavers.c.id))))
    db.execute(
        am.insert().from_select(
            ["audience_id", "person_id"],
            sa.select(sa.literal(audience_id, sa.Integer), joiners.c.id),
        )
    )


def changed(
    db: Connection, *, workspace_id: int, audience_ids: Sequence[int], now: datetime
) -> None:
    """These audiences' filter or persona changed: the stored ones are matched again from
    scratch (new members are queued; leavers leave the not-enrolled views)."""
    a = t.audiences
    for audience_id in list(
        db.scalars(
            sa.select(a.c.id)
            .where(in_list(a.c.id, list(audience_ids)), a.c.matched_at.is_not(None))
            .order_by(a.c.id)
        )
    ):
        store(db, workspace_id=workspace_id, audience_id=audience_id, now=now)


def rematch(
    db: Connection,
    *,
    workspace_id: int,
    people: sa.Select[Any],
    via_company: sa.Select[Any],
    audiences: Sequence[StoredAudience],
    queued_at: datetime,
) -> None:
    """Re-match the memberships of `people` (their own row changed) and of `via_company`
    (only their company changed: asked only the audiences that read a company field)
    against the stored `audiences`, each at its own instant. New members are queued
    with `queued_at`, the moment the change is committed."""
    _rematch(db, workspace_id=workspace_id, audiences=audiences, people=people, at=queued_at)
    reading_company = [a for a in audiences if a.reads_company()]
    if reading_company:
        _rematch(
            db,
            workspace_id=workspace_id,
            audiences=reading_company,
            people=via_company,
            at=queued_at,
        )


def _rematch(
    db: Connection,
    *,
    workspace_id: int,
    audiences: Sequence[StoredAudience],
    people: sa.Select[Any],
    at: datetime,
) -> None:
    few = list(db.scalars(people.limit(FEW + 1)))
    if not few:
        return
    if len(few) > FEW:
        for audience in audiences:
            _rematch_in_sql(
                db, workspace_id=workspace_id, audience=audience, people=people, queued_at=at
            )
        return
    am = t.audience_matches
    ids = [a.id for a in audiences]
    before = {
        (audience_id, person_id)
        for audience_id, person_id in db.execute(
            sa.select(am.c.audience_id, am.c.person_id).where(
                in_list(am.c.person_id, few), in_list(am.c.audience_id, ids)
            )
        )
    }
    loaded = subjects.load(db, workspace_id=workspace_id, person_ids=few)
    after = {
        (audience.id, person_id)
        for person_id in few
        if person_id in loaded.people
        for audience in audiences
        if audience.node is None
        or holds(audience.node, loaded.person(person_id), Context(now=audience.matched_at))
    }
    joined = sorted(after - before, key=lambda pair: pair[1])
    if joined:
        db.execute(am.insert(), [{"audience_id": a, "person_id": p} for a, p in joined])
    for audience in audiences:
        new = [p for a, p in joined if a == audience.id]
        gone = sorted(p for a, p in before - after if a == audience.id)
        if gone:
            db.execute(
                am.delete().where(am.c.audience_id == audience.id, in_list(am.c.person_id, gone))
            )
        if new:
            enrollment_queue.queue_members(
                db,
                workspace_id=workspace_id,
                audience_id=audience.id,
                people=sa.select(t.people.c.id).where(in_list(t.people.c.id, new)),
                now=at,
            )
        if gone:
            enrollment_queue.forget_leavers(
                db,
                audience_id=audience.id,
                people=sa.select(t.people.c.id).where(in_list(t.people.c.id, gone)),
            )


def _rematch_in_sql(
    db: Connection,
    *,
    workspace_id: int,
    audience: StoredAudience,
    people: sa.Select[Any],
    queued_at: datetime,
    at: datetime | None = None,
) -> None:
    """Re-match many people against one audience, set-based, at `at` (default: the
    audience's own instant); new members are queued with `queued_at`."""
    am = t.audience_matches
    fresh = members(audience, workspace_id=workspace_id, now=at or audience.matched_at).where(
        t.people.c.id.in_(people)
    )
    mine = am.c.audience_id == audience.id
    was = sa.select(am.c.person_id).where(mine, am.c.person_id.in_(people))
    enrollment_queue.queue_members(
        db,
        workspace_id=workspace_id,
        audience_id=audience.id,
        people=fresh.where(t.people.c.id.not_in(was)),
        now=queued_at,
    )
    left = was.where(am.c.person_id.not_in(fresh))
    enrollment_queue.forget_leavers(
        db, audience_id=audience.id, people=sa.select(left.subquery().c[0])
    )
    db.execute(am.delete().where(mine, am.c.person_id.in_(people), am.c.person_id.not_in(fresh)))
    db.execute(
        insert_ignoring_duplicates(db, t.audience_matches).from_select(
            ["audience_id", "person_id"],
            fresh.with_only_columns(sa.literal(audience.id, sa.Integer), t.people.c.id),
        )
    )


def advance(db: Connection, *, workspace_id: int, now: datetime) -> None:
    """Move every stored audience whose filter reads a relative date to `now`: only the
    people whose date lies between the two instants' cutoffs are asked again."""
    a = t.audiences
    for audience in stored(db, workspace_id=workspace_id):
        if audience.node is None or audience.matched_at == now:
            continue
        keys = moved_keys(
            audience.as_rule(), workspace_id=workspace_id, then=audience.matched_at, now=now
        )
        if keys is None:
            continue
        _rematch_in_sql(
            db, workspace_id=workspace_id, audience=audience, people=keys, queued_at=now, at=now
        )
        db.execute(a.update().where(a.c.id == audience.id).values(matched_at=now))


def verify(db: Connection, *, workspace_id: int, now: datetime) -> list[str]:
    """Differences between the stored members and a from-scratch evaluation at each
    audience's own instant: empty when they are true. For tests."""
    problems = []
    am = t.audience_matches
    for audience in stored(db, workspace_id=workspace_id):
        kept = set(db.scalars(sa.select(am.c.person_id).where(am.c.audience_id == audience.id)))
        fresh = set(
            db.scalars(members(audience, workspace_id=workspace_id, now=audience.matched_at))
        )
        if kept != fresh:
            problems.append(
                f"audience {audience.id}: stored {sorted(kept - fresh)[:5]} extra, "
                f"{sorted(fresh - kept)[:5]} missing"
            )
    return problems
