"""The decision index's flush of a few queued rows: one write, a webhook, a reply.

`services.decision_index.flush` hands the queue here first. When every part of it is small
(at most `SMALL_QUEUE` rows, as many people through a changed company, no own-send kinds),
it is re-matched in a fixed handful of statements: the queue read once, the people and
groups concerned loaded once for both the exclusions and the stored audiences, each of
them asked in Python only the rules its values can select (`filters.candidates`) and every
stored audience, and only what moved written back. The statements that do not depend on
the rules are built once (`_Statements`), so a flush pays for running them, not for
building and compiling them again. A larger queue is left, untouched, to the set-based
path of `decision_index`.

The answers are the ones the set-based path gives: the same `holds()` at each rule's and
each audience's own instant, the same rows deleted and inserted, the same people queued
for enrollment and asked again. `tests/eligibility/test_index_stateful.py` switches
between the two paths.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.clock import utcnow
from optout.db import tables as t
from optout.db.inserts import insert_ignoring_duplicates
from optout.eligibility.model import ExclusionSpec
from optout.filters import Subject
from optout.filters.ast import conditions
from optout.filters.candidates import Candidates
from optout.filters.fields import Level
from optout.filters.holds import holds
from optout.filters.operators import Context
from optout.filters.sqlfunc import in_list
from optout.services import audience_index, enrollment_queue, subjects
from optout.services.exclusion_rules import stored_specs
from optout.services.id_lists import ByLength
from optout.services.subjects import Loaded

# Kinds of queued rows: a person's own row, a company (its people), a linked-company group.
PERSON, COMPANY, GROUP = "p", "c", "g"
# Kinds that say which dates alone moved (`decision_index.DATED_KINDS`): the flush re-matches
# them before it hands the rest here.
_DATED_KINDS = frozenset({"a", "b", "r", "d"})


_WORKSPACE = sa.bindparam("workspace_id", type_=sa.Integer)
# The statements that ask about a list of ids (people, companies, groups, audiences).
_PEOPLE_OF_COMPANIES = ByLength(
    lambda ids, _db: (
        sa.select(t.people.c.id)
        .where(t.people.c.workspace_id == _WORKSPACE, ids(t.people.c.company_id))
        .limit(sa.bindparam("limit"))
    )
)
_PEOPLE_DELETED = ByLength(
    lambda ids, _db: t.exclusion_matches.delete().where(ids(t.exclusion_matches.c.person_id))
)
_GROUPS_DELETED = ByLength(
    lambda ids, _db: t.exclusion_group_matches.delete().where(
        ids(t.exclusion_group_matches.c.group_id)
    )
)
# Every stored membership of the people (those of the audiences asked are kept).
_MEMBERS_BEFORE = ByLength(
    lambda ids, _db: sa.select(
        t.audience_matches.c.audience_id, t.audience_matches.c.person_id
    ).where(ids(t.audience_matches.c.person_id))
)
_SEQUENCES_OF = ByLength(
    lambda ids, _db: sa.select(
        t.sequences.c.id, t.sequences.c.audience_id, t.sequences.c.auto_enroll, t.sequences.c.status
    ).where(t.sequences.c.workspace_id == _WORKSPACE, ids(t.sequences.c.audience_id))
)


@dataclass(frozen=True)
class _Statements:
    """The statements of a flush that do not depend on the rules, built once per dialect."""

    queued: sa.Select[Any]
    emptied: sa.Delete
    members_left: sa.Delete
    queue_joiners: Any
    left_queue: sa.Delete
    left_view: sa.Delete

    @classmethod
    def build(cls, db: Connection) -> _Statements:
        q, am, eq, k = t.match_queue, t.audience_matches, t.enrollment_queue, t.enrollment_skips
        # The queue rows of this transaction (PostgreSQL tags them with its id).
        mine = q.c.txn == (sa.func.txid_current() if db.dialect.name == "postgresql" else 0)
        return cls(
            queued=sa.select(q.c.workspace_id, q.c.kind, q.c.key)
            .where(mine)
            .limit(sa.bindparam("limit")),
            emptied=q.delete().where(mine),
            members_left=am.delete().where(
                am.c.audience_id == sa.bindparam("a"), am.c.person_id == sa.bindparam("p")
            ),
            queue_joiners=insert_ignoring_duplicates(db, eq),
            left_queue=eq.delete().where(
                eq.c.sequence_id == sa.bindparam("s"), eq.c.person_id == sa.bindparam("p")
            ),
            left_view=k.delete().where(
                k.c.sequence_id == sa.bindparam("s"), k.c.person_id == sa.bindparam("p")
            ),
        )


_BUILT: dict[str, _Statements] = {}


def statements(db: Connection) -> _Statements:
    dialect = db.dialect.name
    built = _BUILT.get(dialect)
    if built is None:
        built = _BUILT[dialect] = _Statements.build(db)
    return built


def queued(db: Connection, *, limit: int) -> list[tuple[int, str, int]]:
    """Up to `limit` rows of this transaction's queue: (workspace, kind, key)."""
    rows = db.execute(statements(db).queued, {"limit": limit})
    return [(int(w), str(kind), int(key)) for w, kind, key in rows]


def empty(db: Connection) -> None:
    db.execute(statements(db).emptied)


# The rules of a workspace, split as a flush asks them; worked out once per reading.


@dataclass(frozen=True)
class Rules:
    people: list[ExclusionSpec]
    people_reading_company: list[ExclusionSpec]
    company: list[ExclusionSpec]
    by_id: dict[int, ExclusionSpec]
    people_index: Candidates
    reading_company_index: Candidates
    company_index: Candidates


_SPLIT: dict[tuple[int, ...], tuple[list[ExclusionSpec], Rules]] = {}
# The split by the rules' version (`workspaces.rules_version`, changed by the database
# with every change to a rule), as the rule store keeps the rules it read.
_BY_VERSION: dict[tuple[Any, int, int], Rules] = {}
_VERSION = sa.select(t.workspaces.c.rules_version).where(
    t.workspaces.c.id == sa.bindparam("workspace_id")
)


def rules_of(db: Connection, *, workspace_id: int) -> Rules:
    """The workspace's stored rules (those with stored matches), split by level and by
    whether they read a company field, with their value indexes. Kept by the rules'
    version, read first: while it is the same, the rules are not read at all. Otherwise
    the rule store returns the same rule objects until the rules change, so the split is
    also kept by their identity (the kept list holds them, so no id is reused while it is
    kept)."""
    version = int(db.scalar(_VERSION, {"workspace_id": workspace_id}) or 0)
    at = (db.engine.url, workspace_id, version)
    if version:
        found = _BY_VERSION.get(at)
        if found is not None:
            return found
    split = _split(db, workspace_id=workspace_id)
    if version:
        if len(_BY_VERSION) >= 16:
            _BY_VERSION.clear()
        _BY_VERSION[at] = split
    return split


def _split(db: Connection, *, workspace_id: int) -> Rules:
    specs = stored_specs(db, workspace_id=workspace_id)
    key = tuple(map(id, specs))
    kept = _SPLIT.get(key)
    if kept is not None:
        return kept[1]
    stored = [r for r in specs if r.matched_at is not None]
    people = [r for r in stored if r.level is Level.PEOPLE]
    reading = [r for r in people if reads_company(r)]
    company = [r for r in stored if r.level is Level.COMPANY]
    split = Rules(
        people=people,
        people_reading_company=reading,
        company=company,
        by_id={r.id: r for r in stored},
        people_index=Candidates.of((r.id, r.filter) for r in people),
        reading_company_index=Candidates.of((r.id, r.filter) for r in reading),
        company_index=Candidates.of((r.id, r.filter) for r in company),
    )
    if len(_SPLIT) >= 16:
        _SPLIT.clear()
    _SPLIT[key] = (specs, split)
    return split


def reads_company(rule: ExclusionSpec) -> bool:
    return any(condition.field.startswith("company.") for condition in conditions(rule.filter))


def hits(
    rules: dict[int, ExclusionSpec], index: Candidates, subjects_of: Iterable[Subject]
) -> set[int]:
    """The ids of the rules that hold for any of the subjects (a group's companies), each
    rule at its own instant, asking only the rules the subjects' values select."""
    found: set[int] = set()
    for subject in subjects_of:
        for rule_id in index.for_subject(subject):
            if rule_id in found:
                continue
            rule = rules[rule_id]
            assert rule.matched_at is not None
            if holds(rule.filter, subject, Context(now=rule.matched_at)):
                found.add(rule_id)
    return found


# The flush.


@dataclass
class _Part:
    """One workspace's share of the queue."""

    workspace_id: int
    people: list[int] = field(default_factory=list)  # their own row changed
    companies: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    via_company: list[int] = field(default_factory=list)  # only their company changed


def flush(
    db: Connection, rows: Sequence[tuple[int, str, int]], *, small: int, few_members: int
) -> bool:
    """Re-match the queue `rows` (all of this transaction's) and empty the queue, when
    every part is small: at most `small` rows and people through a company, at most
    `few_members` people for the audiences. False, with nothing written, otherwise."""
    if len(rows) > small or any(kind in _DATED_KINDS for _, kind, _ in rows):
        return False
    parts: dict[int, _Part] = {}
    for workspace_id, kind, key in rows:
        part = parts.setdefault(workspace_id, _Part(workspace_id))
        {PERSON: part.people, COMPANY: part.companies, GROUP: part.groups}[kind].append(key)
    for part in parts.values():
        if part.companies:
            direct = set(part.people)
            at_companies = _PEOPLE_OF_COMPANIES.execute(
                db,
                part.companies,
                workspace_id=part.workspace_id,
                limit=small + len(direct) + 1,
            ).scalars()
            part.via_company = sorted(set(at_companies) - direct)
            if len(part.via_company) > small:
                return False
        if len(part.people) + len(part.via_company) > few_members:
            return False
    now = utcnow()
    for part in parts.values():
        _flush_part(db, part, now=now)
    empty(db)
    return True


def _flush_part(db: Connection, part: _Part, *, now: datetime) -> None:
    rules = rules_of(db, workspace_id=part.workspace_id)
    audiences = audience_index.stored(db, workspace_id=part.workspace_id)
    asked_people = rules.people and part.people
    asked_via = rules.people_reading_company and part.via_company
    asked_groups = rules.company and part.groups
    people = sorted({*part.people, *part.via_company})
    if not (asked_people or asked_via or asked_groups or (audiences and people)):
        if audiences:
            _ask_again(db, part, now=now)
        return
    loaded = subjects.load(
        db,
        workspace_id=part.workspace_id,
        person_ids=people if asked_people or asked_via or audiences else [],
        group_ids=sorted(part.groups) if asked_groups else [],
    )
    if asked_people:
        _PEOPLE_DELETED.execute(db, part.people)
    if asked_via:
        em = t.exclusion_matches
        db.execute(
            em.delete().where(
                em.c.person_id.in_(part.via_company),
                in_list(em.c.exclusion_id, [r.id for r in rules.people_reading_company]),
            )
        )
    matched: list[dict[str, int]] = []
    for keys, index, asked in (
        (part.people, rules.people_index, asked_people),
        (part.via_company, rules.reading_company_index, asked_via),
    ):
        for person_id in keys if asked else ():
            if person_id in loaded.people:
                found = hits(rules.by_id, index, [loaded.person(person_id)])
                matched += [{"exclusion_id": r, "person_id": person_id} for r in sorted(found)]
    if matched:
        db.execute(t.exclusion_matches.insert(), matched)
    if asked_groups:
        _GROUPS_DELETED.execute(db, part.groups)
        groups = [
            {"exclusion_id": r, "group_id": group_id}
            for group_id in sorted(part.groups)
            for r in sorted(hits(rules.by_id, rules.company_index, loaded.group(group_id)))
        ]
        if groups:
            db.execute(t.exclusion_group_matches.insert(), groups)
    if audiences:
        _audiences(db, part, audiences, loaded, now=now)
        _ask_again(db, part, now=now)


def _audiences(
    db: Connection,
    part: _Part,
    audiences: Sequence[audience_index.StoredAudience],
    loaded: Loaded,
    *,
    now: datetime,
) -> None:
    """The people's memberships of the stored audiences (only those that read a company
    field for the people whose company alone changed), re-matched on the loaded rows;
    joiners queued for the audience's sequences that enroll by themselves, leavers out of
    every sequence's queue and not-enrolled view of the audience."""
    reading_company = [a for a in audiences if a.reads_company()]
    asked = [(p, audiences) for p in part.people] + [(p, reading_company) for p in part.via_company]
    people = [p for p, its in asked if its]
    if not people:
        return
    sql = statements(db)
    considered = {(a.id, p) for p, its in asked for a in its}
    before = {(int(a), int(p)) for a, p in _MEMBERS_BEFORE.execute(db, people)} & considered
    after = {
        (audience.id, person_id)
        for person_id, its in asked
        if person_id in loaded.people
        for audience in its
        if audience.node is None
        or holds(audience.node, loaded.person(person_id), Context(now=audience.matched_at))
    }
    joined = sorted(after - before, key=lambda pair: (pair[1], pair[0]))
    gone = sorted(before - after)
    if not joined and not gone:
        return
    if joined:
        db.execute(
            t.audience_matches.insert(), [{"audience_id": a, "person_id": p} for a, p in joined]
        )
    if gone:
        db.execute(sql.members_left, [{"a": a, "p": p} for a, p in gone])
    sequences: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for sequence_id, audience_id, auto, status in _SEQUENCES_OF.execute(
        db, {a for a, _ in joined} | {a for a, _ in gone}, workspace_id=part.workspace_id
    ):
        sequences[audience_id].append((sequence_id, bool(auto) and status == "active"))
    queue = [
        {"workspace_id": part.workspace_id, "sequence_id": s, "person_id": p, "queued_at": now}
        for a, p in joined
        for s, enrolling in sequences.get(a, [])
        if enrolling
    ]
    if queue:
        db.execute(sql.queue_joiners, queue)
    left = sorted({(s, p) for a, p in gone for s, _ in sequences.get(a, [])})
    if left:
        pairs = [{"s": s, "p": p} for s, p in left]
        db.execute(sql.left_queue, pairs)
        db.execute(sql.left_view, pairs)


def _ask_again(db: Connection, part: _Part, *, now: datetime) -> None:
    """The touched people of the not-enrolled views are queued again, since what stopped
    them may have changed: the people written, those of the changed companies and those
    of the changed groups."""
    people = sorted({*part.people, *part.via_company})
    if people:
        enrollment_queue.requeue_skipped_of(
            db, workspace_id=part.workspace_id, now=now, people=people
        )
    if part.groups:
        enrollment_queue.requeue_skipped(
            db,
            workspace_id=part.workspace_id,
            now=now,
            people=sa.select(t.people.c.id)
            .join(t.companies, t.companies.c.id == t.people.c.company_id)
            .where(
                t.people.c.workspace_id == part.workspace_id,
                in_list(t.companies.c.group_id, part.groups),
            ),
        )
