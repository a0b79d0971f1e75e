"""The decision index: who every exclusion matches, stored, and kept true in the writing
transaction, so an answer about a million people reads a few indexed rows instead of
evaluating a thousand rules over everyone.

What is stored. `exclusion_matches` holds the people a people-level exclusion matches;
`exclusion_group_matches` the linked-company groups (R12) a company-level one matches.
Every exclusion is stored, enabled or not: whether it applies (enabled, tier, audience
switch-offs, rulesets) is a filter on the exclusion id when reading, so a toggle costs
nothing and the SQL answer and `decide()` keep agreeing.

Kept true. Saving an exclusion (new filter or level) recomputes it in one set-based pass
(`rebuild`). Every other write that can change a match is caught by database triggers on
people, companies, opportunities and contact roles, whatever code path made it (page,
API, CLI, CSV import, CRM sync, webhook, a reply or a send moving an activity date): they
queue the person, company or group in `match_queue`. `flush` re-matches exactly the
queued rows against every stored rule and empties the queue: a few rows (one write, a
webhook) in Python, each against only the rules its values can select (a rule that lists
domains is asked only about a company at one of them, `filters.candidates`), with the
same `holds()` that explain uses (`services.decision_index_few`: the queue read once, the
people loaded once for the rules and the stored audiences, its statements built once);
many rows (an import, a sync) in set-based SQL. Every commit runs it (`db.engine`), and
every reader calls it first, so no answer ever sees a stale match, including inside the
transaction that made the write. An update that moves
only activity dates (those our own sends move, `OWN_SEND_FIELDS`, and those a reply or
another activity moves, `ACTIVITY_FIELDS`) is queued apart and re-matched only against
the rules that read the dates that moved, so recording sent emails costs the worker no
re-match at all where no rule reads them, and a reply re-matches its company's people
against the few rules on a company's activity dates rather than every rule that reads
some company field.

Time. A rule on a relative date (`within_last_days`, `older_than_days`) changes with the
clock, not with a write. Each exclusion records the instant its stored matches hold for
(`exclusions.matched_at`, C). Asked at another instant T, only rows whose date lies
between the two cutoffs (C - N days and T - N days, for every such condition of the
rule) can answer differently; `people_matched` / `groups_matched` return the stored rows
outside that band and the rule evaluated afresh inside it, so an answer at T equals a
from-scratch evaluation at T for every T, the clock jumping back included. `advance`
writes that answer down and moves C to T; the worker does it on every pass, so the band a
read evaluates stays a few seconds wide. A queued row is re-matched at the rule's own C,
which keeps each rule's rows true for one instant.

Concurrency. SQLite serializes writers and gives each read transaction one snapshot. On
PostgreSQL a reader loads the rules and then reads their rows in separate statements, so
`hold` takes a shared advisory lock for the transaction and `advance` / `rebuild` an
exclusive one (`hold_exclusive`): C never moves under a reader.

Lock order (PostgreSQL). A transaction takes the decision index's advisory locks before
any row lock (a write, a SELECT ... FOR UPDATE), and never the other way round:

1. the advisory locks first, at the start of the transaction: a claim of due emails
   takes the shared lock of every workspace it may claim from (`sending.claim`); an
   exclusion save takes its workspace's exclusive lock (`services.exclusions.saves`); the
   worker's `advance` pass takes each workspace's exclusive lock in its own transaction;
2. several workspaces in ascending id order;
3. a transaction that will need the exclusive lock takes it before any shared one: a
   shared lock is never upgraded (two upgrades wait for each other);
4. then row locks, in whatever order the work needs.

A claim that locked its emails and then waited for the lock, while a save held the lock
and waited for those emails, was a deadlock PostgreSQL broke by failing one of them. A
path that still reads the index after it wrote (a read late in a writing request) can
wait the same way; every writing transaction is therefore run again, whole, after a
deadlock or a serialization failure (`db.conflicts`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.clock import utcnow
from optout.db import tables as t
from optout.db.inserts import insert_ignoring_duplicates
from optout.eligibility.index import (
    live,
    matched,
    matching_ids,
    moved_keys,
    stored_table,
)
from optout.eligibility.matching import on_the_row
from optout.eligibility.model import ExclusionSpec
from optout.filters import Node, Subject
from optout.filters.ast import conditions
from optout.filters.candidates import Candidates
from optout.filters.fields import Level
from optout.filters.sqlfunc import in_list
from optout.services import audience_index, decision_index_few, enrollment_queue, subjects
from optout.services.exclusion_rules import stored_specs

# SQLite refuses compound SELECTs of more than 500 terms; stay well below.
_RULES_PER_STATEMENT = 200
# A queue of at most this many people and groups (one write, a webhook) is re-matched in
# Python against the rules their values select; a larger one (an import, a sync) in SQL.
SMALL_QUEUE = 50
# The fields our own sends move. Their moves are queued apart (kinds 'a', a person, and 'b',
# a company; migration 0013): a worker recording sent emails then re-matches nothing unless
# a rule of the workspace reads one of them.
OWN_SEND_FIELDS = frozenset(
    {"person.last_emailed_at", "person.last_activity_any_at", "company.last_activity_any_at"}
)
# The activity dates a reply, a meeting, a call or a CRM activity moves. Their moves are
# queued apart too (kinds 'r', a person, and 'd', a company; migration 0024) and re-matched
# only against the rules that read them: a reply re-matches its company's people against
# the few rules on those dates, not against every rule that reads some company field.
ACTIVITY_FIELDS = frozenset(
    {
        "person.last_replied_at",
        "person.last_activity_at",
        "company.last_replied_at",
        "company.last_activity_at",
    }
)


@dataclass(frozen=True)
class DatedKind:
    """A kind of queued row that says which of a person's or a company's dates moved."""

    company: bool  # the key is a company (else a person)
    fields: frozenset[str]  # the fields behind the dates that moved


DATED_KINDS = {
    "a": DatedKind(False, frozenset(f for f in OWN_SEND_FIELDS if f.startswith("person."))),
    "b": DatedKind(True, frozenset(f for f in OWN_SEND_FIELDS if f.startswith("company."))),
    "r": DatedKind(False, frozenset(f for f in ACTIVITY_FIELDS if f.startswith("person."))),
    "d": DatedKind(True, frozenset(f for f in ACTIVITY_FIELDS if f.startswith("company."))),
}


def matches_of(
    db: Connection,
    *,
    workspace_id: int,
    person_ids: Sequence[int],
    exclusions: Sequence[ExclusionSpec],
    now: datetime,
) -> dict[int, set[int]]:
    """For each of `person_ids`, the ids of the `exclusions` that match them at `now`
    (a company-level one through the person's linked group): a few indexed reads."""
    out: dict[int, set[int]] = {pid: set() for pid in person_ids}
    if not person_ids:
        return out
    p, c = t.people, t.companies
    em, eg = t.exclusion_matches, t.exclusion_group_matches
    asked = in_list(p.c.id, list(person_ids))
    people_ids, people_rest = matching_ids(exclusions, level=Level.PEOPLE, now=now)
    group_ids, group_rest = matching_ids(exclusions, level=Level.COMPANY, now=now)
    queries: list[sa.Select[Any]] = []
    if people_ids:
        queries.append(
            sa.select(em.c.person_id, em.c.exclusion_id).where(
                in_list(em.c.person_id, list(person_ids)), in_list(em.c.exclusion_id, people_ids)
            )
        )
    if group_ids:
        queries.append(
            sa.select(p.c.id, eg.c.exclusion_id)
            .join(c, c.c.id == p.c.company_id)
            .join(eg, eg.c.group_id == c.c.group_id)
            .where(asked, in_list(eg.c.exclusion_id, group_ids))
        )
    for rule in [*people_rest, *group_rest]:
        # Not answered by its stored rows at `now`: asked on the few rows themselves.
        queries.append(
            sa.select(p.c.id, sa.literal(rule.id, sa.Integer))
            .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
            .where(asked, on_the_row(rule, p, c, workspace_id, now))
        )
    for query in queries:
        for person_id, exclusion_id in db.execute(query):
            out[person_id].add(exclusion_id)
    return out


# Writing.


def hold(db: Connection, *, workspace_id: int) -> None:
    """Keep every rule's clock where it is until this transaction ends (PostgreSQL). Taken
    before any row lock of the transaction (the lock order above)."""
    if db.dialect.name == "postgresql":
        db.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(_lock_key(workspace_id))))


def hold_exclusive(db: Connection, *, workspace_id: int) -> None:
    """Hold the workspace's stored matches for a change of rules or clocks until this
    transaction ends (PostgreSQL): taken first, before any shared lock or row lock."""
    if db.dialect.name == "postgresql":
        db.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(workspace_id))))


_hold_exclusive = hold_exclusive


def _lock_key(workspace_id: int) -> int:
    return zlib.crc32(f"optout-decision-index-{workspace_id}".encode()) - 2**31


def _specs(db: Connection, workspace_id: int) -> list[ExclusionSpec]:
    return stored_specs(db, workspace_id=workspace_id)


def _fill(
    db: Connection,
    rules: Sequence[ExclusionSpec],
    *,
    workspace_id: int,
    within: sa.Select[Any] | None,
    at: datetime | None = None,
) -> None:
    """Insert what each rule matches (among `within`, when given), evaluated at `at` or at
    the rule's own instant."""
    for level in Level:
        table, key = stored_table(level)
        of_level = [r for r in rules if r.level is level]
        for i in range(0, len(of_level), _RULES_PER_STATEMENT):
            selects = []
            for rule in of_level[i : i + _RULES_PER_STATEMENT]:
                when = at or rule.matched_at
                assert when is not None
                query = live(rule, workspace_id=workspace_id, now=when)
                column = query.selected_columns[0]
                if within is not None:
                    query = query.where(column.in_(within))
                selects.append(
                    query.with_only_columns(
                        sa.literal(rule.id, sa.Integer).label("exclusion_id"),
                        column.label(key.name),
                    ).distinct()
                )
            body = selects[0] if len(selects) == 1 else sa.union_all(*selects)
            db.execute(
                insert_ignoring_duplicates(db, table).from_select(["exclusion_id", key.name], body)
            )


def rebuild(db: Connection, *, workspace_id: int, exclusion_id: int, now: datetime) -> None:
    """Recompute one exclusion's stored matches from scratch at `now` (after a save)."""
    flush(db)
    _hold_exclusive(db, workspace_id=workspace_id)
    x = t.exclusions
    db.execute(x.update().where(x.c.id == exclusion_id).values(matched_at=now))
    (rule,) = [r for r in _specs(db, workspace_id) if r.id == exclusion_id]
    for level in Level:
        table, _ = stored_table(level)
        db.execute(table.delete().where(table.c.exclusion_id == exclusion_id))
    _fill(db, [rule], workspace_id=workspace_id, within=None)


def _mine(db: Connection) -> Any:
    """The queue rows of this transaction (PostgreSQL tags them with its id)."""
    q = t.match_queue
    if db.dialect.name == "postgresql":
        return q.c.txn == sa.func.txid_current()
    return q.c.txn == 0


def flush(db: Connection) -> None:
    """Re-match every queued person and group against the stored rules that can have moved
    for it; empty the queue.

    A person queued for their own row (kind 'p') is asked every people-level rule. A
    person queued only because their company changed (kind 'c', expanded here) is asked
    only the people-level rules that read a company field: no other rule can answer
    differently for them. A group is asked every company-level rule. A person or a
    company whose dates alone moved (kinds 'a', 'b', 'r', 'd': `DATED_KINDS`) is asked,
    first, only the rules that read those dates (`_dated`)."""
    rows = decision_index_few.queued(db, limit=SMALL_QUEUE + 1)
    if not rows:
        return
    if len(rows) > SMALL_QUEUE or any(kind in DATED_KINDS for _, kind, _ in rows):
        _dated(db)
        rows = decision_index_few.queued(db, limit=SMALL_QUEUE + 1)
        if not rows:
            return
    if decision_index_few.flush(db, rows, small=SMALL_QUEUE, few_members=audience_index.FEW):
        return
    q, p = t.match_queue, t.people
    mine = _mine(db)
    for workspace_id in list(db.scalars(sa.select(q.c.workspace_id).where(mine).distinct())):
        rules = [r for r in _specs(db, workspace_id) if r.matched_at is not None]
        ours = sa.and_(mine, q.c.workspace_id == workspace_id)
        people_rules = [r for r in rules if r.level is Level.PEOPLE]
        direct = sa.select(q.c.key).where(ours, q.c.kind == "p")
        _refresh(
            db,
            people_rules,
            workspace_id=workspace_id,
            level=Level.PEOPLE,
            keys=direct,
            every_rule=True,
        )
        reading_company = [r for r in people_rules if _reads_company(r)]
        if reading_company:
            via_company = sa.select(p.c.id).where(
                p.c.workspace_id == workspace_id,
                p.c.company_id.in_(sa.select(q.c.key).where(ours, q.c.kind == "c")),
                p.c.id.not_in(direct),
            )
            _refresh(
                db,
                reading_company,
                workspace_id=workspace_id,
                level=Level.PEOPLE,
                keys=via_company,
                every_rule=False,
            )
        _refresh(
            db,
            [r for r in rules if r.level is Level.COMPANY],
            workspace_id=workspace_id,
            level=Level.COMPANY,
            keys=sa.select(q.c.key).where(ours, q.c.kind == "g"),
            every_rule=True,
        )
        _audiences(db, workspace_id=workspace_id, ours=ours, direct=direct)
    db.execute(q.delete().where(mine))


def _audiences(db: Connection, *, workspace_id: int, ours: Any, direct: sa.Select[Any]) -> None:
    """Where sequences enroll by themselves: re-match the queued people's audience
    memberships (new members are queued for enrollment), and queue again those of them
    a sequence left out, since what stopped them may have changed."""
    audiences = audience_index.stored(db, workspace_id=workspace_id)
    if not audiences:
        return
    q, p = t.match_queue, t.people
    companies = sa.select(q.c.key).where(ours, q.c.kind == "c")
    now = utcnow()
    audience_index.rematch(
        db,
        workspace_id=workspace_id,
        people=direct,
        via_company=sa.select(p.c.id).where(
            p.c.workspace_id == workspace_id, p.c.company_id.in_(companies), p.c.id.not_in(direct)
        ),
        audiences=audiences,
        queued_at=now,
    )
    touched = sa.union(
        direct,
        enrollment_queue.people_of_companies(workspace_id, companies),
        enrollment_queue.people_of_groups(
            workspace_id, sa.select(q.c.key).where(ours, q.c.kind == "g")
        ),
    ).subquery()
    enrollment_queue.requeue_skipped(
        db, workspace_id=workspace_id, now=now, people=sa.select(touched.c[0])
    )


def _reads_company(rule: ExclusionSpec) -> bool:
    return any(condition.field.startswith("company.") for condition in conditions(rule.filter))


def _refresh(
    db: Connection,
    rules: Sequence[ExclusionSpec],
    *,
    workspace_id: int,
    level: Level,
    keys: sa.Select[Any],
    every_rule: bool,
) -> None:
    """Re-match the people or groups of `keys` against `rules` (of one level; `every_rule`
    when they are all its stored rules): a few in Python, each against the rules its
    values select; more in set-based SQL."""
    if not rules:
        return
    few = list(db.scalars(keys.limit(SMALL_QUEUE + 1)))
    if not few:
        return
    table, key = stored_table(level)
    of_rules = sa.true() if every_rule else in_list(table.c.exclusion_id, [r.id for r in rules])
    if len(few) <= SMALL_QUEUE:
        db.execute(table.delete().where(in_list(key, few), of_rules))
        _rematch(db, rules, workspace_id=workspace_id, level=level, keys=few)
        return
    db.execute(table.delete().where(key.in_(keys), of_rules))
    _fill(db, rules, workspace_id=workspace_id, within=keys)


def _dated(db: Connection) -> None:
    """Re-match the people and companies whose dates alone moved (`DATED_KINDS`) against
    only the stored rules that read the dates that moved, and take them off the queue:
    a person against the people-level rules on those dates; a company's people against
    the people-level rules on those company dates, and its group against the
    company-level ones. Rows queued for a change of their own ('p', 'c', 'g') are left to
    the rest of the flush, which asks them more. Where a stored audience reads the dates,
    the rows are queued as any other change instead, since the audiences are re-matched
    with those; where no rule and no audience reads them, they are dropped."""
    q = t.match_queue
    mine = _mine(db)
    txn = sa.func.txid_current() if db.dialect.name == "postgresql" else sa.literal(0)
    dated = sa.and_(mine, q.c.kind.in_(sorted(DATED_KINDS)))
    present = db.execute(
        sa.select(q.c.workspace_id, q.c.kind)
        .where(dated)
        .distinct()
        .order_by(*q.c["workspace_id", "kind"])
    ).all()
    for workspace_id in sorted({int(w) for w, _ in present}):
        kinds = [str(kind) for w, kind in present if w == workspace_id]
        rules = [r for r in _specs(db, workspace_id) if r.matched_at is not None]
        audiences = audience_index.stored(db, workspace_id=workspace_id)
        for kind in kinds:
            moved = DATED_KINDS[kind]
            if any(audience.reads(moved.fields) for audience in audiences):
                _queue_as_changed(db, txn, workspace_id=workspace_id, kind=kind)
                continue
            reading = [r for r in rules if _reads(r, moved.fields)]
            if not reading:
                continue
            touched = _rematch_dated(db, reading, workspace_id=workspace_id, kind=kind)
            if audiences:
                enrollment_queue.requeue_skipped(
                    db, workspace_id=workspace_id, now=utcnow(), people=touched
                )
    db.execute(q.delete().where(dated))


def _queued(db: Connection, workspace_id: int, kind: str) -> sa.Select[Any]:
    """The keys of this transaction's queue rows of one workspace and kind, read through
    an alias of the queue, so that it may sit inside a statement on the queue itself."""
    q = t.match_queue.alias()
    mine = q.c.txn == (sa.func.txid_current() if db.dialect.name == "postgresql" else 0)
    return sa.select(q.c.key).where(mine, q.c.workspace_id == workspace_id, q.c.kind == kind)


def _rematch_dated(
    db: Connection, rules: Sequence[ExclusionSpec], *, workspace_id: int, kind: str
) -> sa.Select[Any]:
    """Re-match the rows of a dated kind against `rules` (the stored rules that read its
    dates); the people whose answers may have moved."""
    p, c = t.people, t.companies
    keys = _queued(db, workspace_id, kind)
    if not DATED_KINDS[kind].company:
        _refresh(
            db,
            rules,
            workspace_id=workspace_id,
            level=Level.PEOPLE,
            keys=keys.where(keys.selected_columns[0].not_in(_queued(db, workspace_id, "p"))),
            every_rule=False,
        )
        return keys
    companies = keys.where(keys.selected_columns[0].not_in(_queued(db, workspace_id, "c")))
    _refresh(
        db,
        [r for r in rules if r.level is Level.PEOPLE],
        workspace_id=workspace_id,
        level=Level.PEOPLE,
        keys=sa.select(p.c.id).where(
            p.c.workspace_id == workspace_id,
            p.c.company_id.in_(companies),
            p.c.id.not_in(_queued(db, workspace_id, "p")),
        ),
        every_rule=False,
    )
    groups = sa.select(c.c.group_id).where(c.c.id.in_(keys), c.c.group_id.is_not(None))
    _refresh(
        db,
        [r for r in rules if r.level is Level.COMPANY],
        workspace_id=workspace_id,
        level=Level.COMPANY,
        keys=groups.where(c.c.group_id.not_in(_queued(db, workspace_id, "g"))).distinct(),
        every_rule=False,
    )
    touched = sa.union(
        enrollment_queue.people_of_companies(workspace_id, keys),
        enrollment_queue.people_of_groups(workspace_id, groups),
    ).subquery()
    return sa.select(touched.c[0])


def _queue_as_changed(db: Connection, txn: Any, *, workspace_id: int, kind: str) -> None:
    """Queue the rows of a dated kind as any change of theirs: a person as 'p'; a company
    as 'c' and its group as 'g'."""
    c, q = t.companies, t.match_queue
    keys = _queued(db, workspace_id, kind)
    ws = sa.literal(workspace_id)
    key = keys.selected_columns[0]
    selects = [keys.with_only_columns(txn, ws, sa.literal("p"), key)]
    if DATED_KINDS[kind].company:
        selects = [
            keys.with_only_columns(txn, ws, sa.literal("c"), key),
            sa.select(txn, ws, sa.literal("g"), c.c.group_id).where(
                c.c.id.in_(keys), c.c.group_id.is_not(None)
            ),
        ]
    for select in selects:
        db.execute(
            insert_ignoring_duplicates(db, q).from_select(
                ["txn", "workspace_id", "kind", "key"], select
            )
        )


def _reads(rule: ExclusionSpec, fields: frozenset[str]) -> bool:
    return any(condition.field in fields for condition in conditions(rule.filter))


def _rematch(
    db: Connection,
    rules: Sequence[ExclusionSpec],
    *,
    workspace_id: int,
    level: Level,
    keys: Sequence[int],
) -> None:
    """Re-match a few people or groups in Python: each against only those of `rules` its
    values can select (`Candidates`), each rule at its own instant. Their stored rows for
    `rules` are already deleted."""
    subjects_of: Callable[[int], list[Subject]]
    if level is Level.PEOPLE:
        loaded = subjects.load(db, workspace_id=workspace_id, person_ids=keys)

        def subjects_of(k: int) -> list[Subject]:
            return [loaded.person(k)] if k in loaded.people else []
    else:
        loaded = subjects.load(db, workspace_id=workspace_id, group_ids=keys)
        subjects_of = loaded.group
    table, key = stored_table(level)
    by_id = {r.id: r for r in rules}
    index = _candidates(by_id)
    rows = []
    for k in keys:
        found = decision_index_few.hits(by_id, index, subjects_of(k))
        rows += [{"exclusion_id": rule_id, key.name: k} for rule_id in sorted(found)]
    if rows:
        db.execute(table.insert(), rows)


def _candidates(rules: dict[int, ExclusionSpec]) -> Candidates:
    """The value index of `rules`, reused while their filters are the same objects."""
    return _index(tuple(rules), tuple(rule.filter for rule in rules.values()))


_indexes: dict[tuple[int, ...], tuple[tuple[Node, ...], Candidates]] = {}


def _index(ids: tuple[int, ...], filters: tuple[Node, ...]) -> Candidates:
    kept = _indexes.get(ids)
    if kept is not None and all(a is b for a, b in zip(kept[0], filters, strict=True)):
        return kept[1]
    index = Candidates.of(zip(ids, filters, strict=True))
    if len(_indexes) >= 16:
        _indexes.clear()
    _indexes[ids] = (filters, index)
    return index


def advance(db: Connection, *, workspace_id: int, now: datetime) -> int:
    """Move every clock rule's stored matches to `now`; the number of rules moved. Rules
    never stored yet are computed from scratch."""
    flush(db)
    _hold_exclusive(db, workspace_id=workspace_id)
    x = t.exclusions
    moved = 0
    for rule in _specs(db, workspace_id):
        if rule.matched_at is None:
            rebuild(db, workspace_id=workspace_id, exclusion_id=rule.id, now=now)
            moved += 1
            continue
        keys = moved_keys(rule, workspace_id=workspace_id, then=rule.matched_at, now=now)
        if keys is None or rule.matched_at == now:
            continue
        table, key = stored_table(rule.level)
        db.execute(table.delete().where(table.c.exclusion_id == rule.id, key.in_(keys)))
        _fill(db, [replace(rule, matched_at=now)], workspace_id=workspace_id, within=keys)
        db.execute(x.update().where(x.c.id == rule.id).values(matched_at=now))
        moved += 1
    audience_index.advance(db, workspace_id=workspace_id, now=now)
    return moved


def unstored(db: Connection, *, workspace_id: int) -> int:
    x = t.exclusions
    return int(
        db.scalar(
            sa.select(sa.func.count()).where(
                x.c.workspace_id == workspace_id, x.c.matched_at.is_(None)
            )
        )
        or 0
    )


def verify(db: Connection, *, workspace_id: int, now: datetime) -> list[str]:
    """Differences between the stored matches read at `now` and a from-scratch evaluation:
    empty when the index is true. For tests and `optout doctor`-style checks."""
    problems = []
    for rule in _specs(db, workspace_id):
        stored = set(db.scalars(matched(rule, workspace_id=workspace_id, now=now)))
        fresh = set(db.scalars(live(rule, workspace_id=workspace_id, now=now)))
        if stored != fresh:
            problems.append(
                f"{rule.name}: stored {sorted(stored - fresh)[:5]} extra, "
                f"{sorted(fresh - stored)[:5]} missing"
            )
    return problems
