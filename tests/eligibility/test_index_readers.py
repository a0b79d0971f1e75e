"""Every reader of the decision index answers on the demo workspace exactly as the
from-scratch evaluation does (R13, R14, R16, R22, R28, R29, R30).

The same question is asked twice: once with the stored matches, once with every rule
marked as not stored, which sends each reader back to evaluating the rules over the
data (the form the index replaced). Both answers must be equal, reader by reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db import tables as t
from optout.demo.build import build
from optout.eligibility import Purpose
from optout.eligibility.index import clock_conditions, live
from optout.eligibility.sql import eligible_people
from optout.filters import Level
from optout.sending.claim import claim
from optout.services import decision_index, fresh_rules, monitoring
from optout.services.eligibility import explain, situation
from optout.services.enrollments import enrolling, refresh
from optout.services.exclusions.preview import preview
from optout.services.exclusions.reached import removable_enrollments
from optout.services.sequences import audiences, definitions
from optout.services.staging import requested_people, stage_ids
from optout.web.pages import reads

NOW = datetime(2026, 11, 2, 9, 0, 0)
ACTOR = "test@optout"


@pytest.fixture(scope="module")
def demo_world(engine: Engine) -> Iterator[tuple[Connection, int]]:
    """The demo workspace, built once per database for this module and rolled back after."""
    with engine.connect() as connection:
        outer = connection.begin()
        story = build(connection, slug="demo", now=NOW, seed=7, actor=ACTOR)
        try:
            yield connection, story.workspace_id
        finally:
            outer.rollback()


@pytest.fixture
def db(demo_world: tuple[Connection, int]) -> Connection:
    return demo_world[0]


@pytest.fixture
def demo(demo_world: tuple[Connection, int]) -> int:
    return demo_world[1]


def both(db: Connection, ask: Callable[[], Any]) -> tuple[Any, Any]:
    """`ask()` from the stored matches, then from scratch; nothing either does is kept."""
    with db.begin_nested() as unit:
        stored = ask()
        unit.rollback()
    with db.begin_nested() as unit:
        db.execute(t.exclusions.update().values(matched_at=None))
        fresh = ask()
        unit.rollback()
    return stored, fresh


def _sequences(db: Connection, ws: int) -> list[tuple[int, str]]:
    s = t.sequences
    return [
        (row.id, row.name)
        for row in db.execute(sa.select(s.c.id, s.c.name).where(s.c.workspace_id == ws))
    ]


def _people(db: Connection, ws: int) -> list[tuple[int, str]]:
    p = t.people
    query = sa.select(p.c.id, p.c.email).where(p.c.workspace_id == ws).order_by(p.c.id)
    return [(row.id, row.email) for row in db.execute(query)]


def test_R16_the_demo_is_stored(db: Connection, demo: int) -> None:
    assert fresh_rules.all_specs(db, workspace_id=demo)
    assert decision_index.unstored(db, workspace_id=demo) == 0
    assert decision_index.verify(db, workspace_id=demo, now=NOW) == []
    stored = db.scalar(sa.select(sa.func.count()).select_from(t.exclusion_matches))
    groups = db.scalar(sa.select(sa.func.count()).select_from(t.exclusion_group_matches))
    assert stored, "the demo's people-level rules match people"
    assert groups, "the demo's company-level rules match companies"


@pytest.mark.parametrize("later", [0, 3, 40])
def test_R16_eligible_set_and_enroll_read_the_same(db: Connection, demo: int, later: int) -> None:
    now = NOW + timedelta(days=later)
    for sequence_id, _ in _sequences(db, demo):
        for purpose in Purpose:

            def eligible(purpose: Purpose = purpose, sequence_id: int = sequence_id) -> set[int]:
                where = situation(
                    db, workspace_id=demo, sequence_id=sequence_id, purpose=purpose, now=now
                )
                return set(db.scalars(eligible_people(where)))

            stored, fresh = both(db, eligible)
            assert stored == fresh, (sequence_id, purpose)

        def enroll(sequence_id: int = sequence_id) -> tuple[int, list[int]]:
            everyone = [pid for pid, _ in _people(db, demo)]
            result = enrolling.enroll(
                db,
                workspace_id=demo,
                sequence_id=sequence_id,
                people=everyone,
                actor=ACTOR,
                now=now,
            )
            e = t.enrollments
            active = db.scalars(
                sa.select(e.c.person_id)
                .where(e.c.sequence_id == sequence_id, e.c.status.in_(t.ACTIVE_STATUSES))
                .order_by(e.c.person_id)
            )
            return result.enrolled, list(active)

        stored, fresh = both(db, enroll)
        assert stored == fresh


@pytest.mark.parametrize("later", [3, 40])
def test_R16_a_few_people_asked_after_the_clock_moved_read_as_everyone_does(
    db: Connection, demo: int, later: int
) -> None:
    """Asked about a staged set of people (an enrollment, its refusals), a rule whose clock
    moved since it was stored is evaluated on those rows alone; the answer is the one the
    stored rows corrected over the workspace give."""
    now = NOW + timedelta(days=later)
    everyone = [pid for pid, _ in _people(db, demo)]
    stage_ids(db, requested_people, everyone)
    for sequence_id, _ in _sequences(db, demo):
        where = situation(
            db, workspace_id=demo, sequence_id=sequence_id, purpose=Purpose.ENROLL, now=now
        )
        moved = [
            rule
            for rule in where.exclusions
            if rule.matched_at is not None and rule.matched_at != now and clock_conditions(rule)
        ]
        assert moved, "the demo has rules that move with the clock"
        over_everyone = set(db.scalars(eligible_people(where)))
        among_few = set(db.scalars(eligible_people(where, among=requested_people)))
        assert among_few == over_everyone, sequence_id
    rules = fresh_rules.all_specs(db, workspace_id=demo)
    named = decision_index.matches_of(
        db, workspace_id=demo, person_ids=everyone, exclusions=rules, now=now
    )
    for rule in rules:
        fresh = set(db.scalars(live(rule, workspace_id=demo, now=now)))
        if rule.level is Level.PEOPLE:
            assert {p for p, hits in named.items() if rule.id in hits} == fresh, rule.name
        else:
            groups = dict(
                db.execute(
                    sa.select(t.people.c.id, t.companies.c.group_id).join(
                        t.companies, t.companies.c.id == t.people.c.company_id
                    )
                ).all()
            )
            expected = {p for p in everyone if groups.get(p) in fresh}
            assert {p for p, hits in named.items() if rule.id in hits} == expected, rule.name


def test_R29_explain_reads_the_same(db: Connection, demo: int) -> None:
    names = [name for _, name in _sequences(db, demo)]

    def explain_all() -> list[Any]:
        return [
            explain(
                db, workspace_id=demo, email=email, sequence=name, now=NOW, purpose=purpose
            ).decision
            for _, email in _people(db, demo)[::3]  # a third of the people, every sequence
            for name in names
            for purpose in Purpose
        ]

    stored, fresh = both(db, explain_all)
    assert stored == fresh


def test_R22_R13_preview_and_unenroll_on_save_read_the_same(db: Connection, demo: int) -> None:
    def previews() -> list[Any]:
        out = []
        for spec in fresh_rules.all_specs(db, workspace_id=demo):
            out.append(preview(db, workspace_id=demo, exclusion=spec, now=NOW))
            removed = removable_enrollments(spec, workspace_id=demo, now=NOW)
            out.append(sorted(db.execute(removed).all()))
            out.append(reads.people_matched(db, workspace_id=demo, exclusion=spec, now=NOW))
        return out

    stored, fresh = both(db, previews)
    assert stored == fresh


def test_R14_R28_monitoring_and_the_send_time_gate_read_the_same(db: Connection, demo: int) -> None:
    def monitor() -> Any:
        everyone = [pid for pid, _ in _people(db, demo)]
        return monitoring.recheck_people(
            db, workspace_id=demo, people=everyone, actor=ACTOR, now=NOW, cause="test"
        )

    stored, fresh = both(db, monitor)
    assert stored == fresh

    def gate() -> tuple[list[int], int]:
        claimed = claim(db, now=NOW + timedelta(days=30), limit=10_000, workspace_id=demo)
        return sorted(c.email_id for c in claimed.claims), claimed.cancelled

    stored, fresh = both(db, gate)
    assert stored == fresh
    assert stored[0] or stored[1], "the demo has emails due"


def test_R30_not_enrolled_and_audience_counts_read_the_same(db: Connection, demo: int) -> None:
    with_audience = [
        name
        for sequence_id, name in _sequences(db, demo)
        if definitions.audience_id(db, workspace_id=demo, sequence_id=sequence_id) is not None
    ]
    assert with_audience

    def left_out() -> list[Any]:
        out: list[Any] = []
        for name in with_audience:
            out.append(refresh.refresh(db, workspace_id=demo, sequence=name, actor=ACTOR, now=NOW))
            out.append(refresh.not_enrolled(db, workspace_id=demo, sequence=name, limit=10_000))
        a = t.audiences
        for audience_id in db.scalars(sa.select(a.c.id).where(a.c.workspace_id == demo)):
            spec = audiences.spec(db, workspace_id=demo, audience_id=audience_id)
            out.append(audiences.size(db, workspace_id=demo, audience=spec, now=NOW))
            out.append(audiences.affecting_exclusions(db, workspace_id=demo, audience=spec.name))
        out.append(reads.totals(db, workspace_id=demo))
        return out

    stored, fresh = both(db, left_out)
    assert stored == fresh
