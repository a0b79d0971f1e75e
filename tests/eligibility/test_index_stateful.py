"""The decision index stays true under any sequence of writes and clock moves (R14, R16,
R41).

A hypothesis state machine writes a random world through the services, then applies
random writes of every kind that can change a match (rules saved, edited, re-levelled,
toggled; people, companies, links, deals and contact roles created, edited and deleted,
some through the services and some as raw set-based SQL as an import or a sync does;
replies and sends moving activity dates; opt-outs; enrollments) and moves the clock
forward and back. After every step: the stored matches equal a from-scratch evaluation
(at the instant each rule holds, and as read at the current clock), the SQL eligible set
equals `decide()` person by person, and `decide()` reading the index gives the very
outcomes it gives evaluating every rule. An audience that a sequence enrolls from by
itself is stored too: its members equal a from-scratch evaluation, and none of them who
was never enrolled is lost (each waits in the queue or is listed as not enrolled).
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import Purpose, decide, index
from optout.errors import Conflict, InvalidFilter, InvalidInput, OptoutError
from optout.filters import Level, to_text
from optout.services import audience_index, decision_index, fresh_rules
from optout.services.directory import companies, opportunities, people
from optout.services.eligibility import facts, situation
from optout.services.enrollments import automatic, enrolling
from optout.services.exclusions import saves
from optout.services.sequences import audiences, auto_enroll
from optout.services.suppression import optouts
from tests.eligibility.test_parity import agreed
from tests.random_worlds import (
    COMPANY_DOMAINS,
    DATES,
    LOCAL_PARTS,
    NOW,
    STAGES,
    STATUSES,
    STEPS,
    TITLES,
    Built,
    Pools,
    build,
    filters,
    pools,
    worlds,
)
from tests.state_machine_parts import runs_of_part, seeded_part

ACTOR = "test@optout"
# 25 runs of 40 steps on each database: 2,000 steps per CI run; `make soak` runs more. The
# runs are shared by PARTS tests, which xdist spreads over its workers.
STEPS_PER_RUN = 40
RUNS = int(os.environ.get("OPTOUT_INDEX_MACHINE_RUNS", "25"))
PARTS = 2
_slugs = itertools.count()

CLOCK_MOVES = st.sampled_from([0, 1, -1, 7, -7, 30, -30, 400]).map(
    lambda days: timedelta(days=days)
) | st.builds(timedelta, seconds=st.integers(-3 * 86_400, 3 * 86_400))
MAIL_DOMAINS = [mail for _, mail in COMPANY_DOMAINS]
MORE_DOMAINS = (*(domain for domain, _ in COMPANY_DOMAINS), "initech.com", "hooli.io")


def stored_rows(db: Connection, rule: saves.ExclusionSpec) -> set[int]:
    if rule.level is Level.PEOPLE:
        em = t.exclusion_matches
        return set(db.scalars(sa.select(em.c.person_id).where(em.c.exclusion_id == rule.id)))
    eg = t.exclusion_group_matches
    return set(db.scalars(sa.select(eg.c.group_id).where(eg.c.exclusion_id == rule.id)))


SMALL_QUEUE = decision_index.SMALL_QUEUE
FEW_MEMBERS = audience_index.FEW


class DecisionIndexMachine(RuleBasedStateMachine):
    def __init__(self, db: Connection) -> None:
        super().__init__()
        self.db = db
        self.savepoint = db.begin_nested()
        self.now = NOW
        self.rules: list[str] = []
        self.built: Built
        self.pool: Pools
        self.sequence_id = 0
        self.audience_id = 0
        self.automatic_id = 0

    def teardown(self) -> None:
        self.savepoint.rollback()
        decision_index.SMALL_QUEUE = SMALL_QUEUE
        audience_index.FEW = FEW_MEMBERS

    # The world -----------------------------------------------------------------------------

    @initialize(spec=worlds(max_companies=4, max_people=6, max_deals=3), data=st.data())
    def world(self, spec: object, data: st.DataObject) -> None:
        self.built = build(self.db, spec)  # type: ignore[arg-type]
        self.pool = pools(spec)  # type: ignore[arg-type]
        world = self.built.world
        ruleset = world.ruleset("Under test", max_active_per_company=None)
        self.sequence_id = world.sequence("Under test", ruleset=ruleset, steps=STEPS)
        # An audience a sequence enrolls from by itself: its members are stored too.
        try:
            self.audience_id = world.audience(
                "Members", filter=data.draw(filters(self.pool, Level.PEOPLE, depth=2))
            )
        except (InvalidFilter, InvalidInput):
            self.audience_id = world.audience("Members")
        self.automatic_id = world.sequence(
            "Enrolls by itself", ruleset=ruleset, audience="Members", steps=STEPS
        )
        auto_enroll.switch(
            self.db,
            workspace_id=self.ws,
            sequence="Enrolls by itself",
            on=True,
            actor=ACTOR,
            now=self.now,
        )

    @property
    def ws(self) -> int:
        return self.built.ws

    def _ids(self, table: sa.Table) -> list[int]:
        return list(
            self.db.scalars(
                sa.select(table.c.id).where(table.c.workspace_id == self.ws).order_by(table.c.id)
            )
        )

    def _pick(self, data: st.DataObject, table: sa.Table) -> int | None:
        ids = self._ids(table)
        return data.draw(st.sampled_from(ids)) if ids else None

    # Rules ---------------------------------------------------------------------------------

    @rule(data=st.data(), level=st.sampled_from(list(Level)))
    def save_rule(self, data: st.DataObject, level: Level) -> None:
        node = data.draw(filters(self.pool, level, depth=2))
        name = f"Rule {len(self.rules)}"
        try:
            saved = saves.create(
                self.db,
                workspace_id=self.ws,
                name=name,
                level=level,
                filter=node,
                actor=ACTOR,
                now=self.now,
                enabled=data.draw(st.sampled_from([True, True, False])),
                exclude_from_sequences=data.draw(st.booleans()),
                unenroll_existing_on_save=data.draw(st.booleans()),
                confirm=True,
            )
        except (InvalidFilter, InvalidInput):
            return
        note(f"saved {name} ({level.value}): {to_text(saved.exclusion.filter)}")
        self.rules.append(name)

    @precondition(lambda self: bool(self.rules))
    @rule(data=st.data())
    def edit_rule(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.rules))
        current = saves.get(self.db, workspace_id=self.ws, name=name)
        level = data.draw(st.sampled_from([current.level, *Level]))
        node = data.draw(filters(self.pool, level, depth=2))
        try:
            saved = saves.update(
                self.db,
                workspace_id=self.ws,
                name=name,
                actor=ACTOR,
                now=self.now,
                level=level,
                filter=node,
                confirm=True,
            )
        except (InvalidFilter, InvalidInput):
            return
        note(f"edited {name} ({level.value}): {to_text(saved.exclusion.filter)}")

    @precondition(lambda self: bool(self.rules))
    @rule(data=st.data())
    def toggle_rule(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.rules))
        current = saves.get(self.db, workspace_id=self.ws, name=name)
        saves.set_enabled(
            self.db,
            workspace_id=self.ws,
            name=name,
            enabled=not current.enabled,
            actor=ACTOR,
            now=self.now,
            confirm=True,
        )

    # People and companies ------------------------------------------------------------------

    @rule(data=st.data())
    def add_person(self, data: st.DataObject) -> None:
        company_id = self._pick(data, t.companies) if data.draw(st.booleans()) else None
        domain = data.draw(st.sampled_from([*MAIL_DOMAINS, "gmail.com"]))
        people.create(
            self.db,
            workspace_id=self.ws,
            email=f"{data.draw(st.sampled_from(LOCAL_PARTS))}@{domain}",
            company_id=company_id,
            title=data.draw(st.sampled_from(TITLES)),
            status=data.draw(st.sampled_from(STATUSES)),
            now=self.now,
        )

    @rule(data=st.data())
    def edit_person(self, data: st.DataObject) -> None:
        person_id = self._pick(data, t.people)
        if person_id is None:
            return
        change = data.draw(st.sampled_from(["title", "status", "company_id", "fields"]))
        value: object
        if change == "company_id":
            value = self._pick(data, t.companies) if data.draw(st.booleans()) else None
        elif change == "fields":
            value = {"tier": data.draw(st.sampled_from(["gold", "GOLD", "silver", ""]))}
        else:
            value = data.draw(st.sampled_from(TITLES if change == "title" else STATUSES))
        people.update(
            self.db,
            workspace_id=self.ws,
            person_id=person_id,
            changes={change: value},
            actor=ACTOR,
            now=self.now,
        )

    @rule(data=st.data())
    def delete_person(self, data: st.DataObject) -> None:
        person_id = self._pick(data, t.people)
        if person_id is not None:
            self.db.execute(t.people.delete().where(t.people.c.id == person_id))

    @rule(data=st.data())
    def add_company(self, data: st.DataObject) -> None:
        try:
            companies.create(
                self.db,
                workspace_id=self.ws,
                domain=data.draw(st.sampled_from(MORE_DOMAINS)),
                name=data.draw(st.sampled_from(["Acme", "Initech", ""])),
                now=self.now,
            )
        except (Conflict, InvalidInput):
            return

    @rule(data=st.data(), when=st.none() | DATES)
    def edit_company(self, data: st.DataObject, when: datetime | None) -> None:
        company_id = self._pick(data, t.companies)
        if company_id is None:
            return
        change = data.draw(st.sampled_from(["name", "last_replied_at", "last_activity_at"]))
        value = data.draw(st.sampled_from(["Acme", "Globex"])) if change == "name" else when
        companies.update(
            self.db,
            workspace_id=self.ws,
            company_id=company_id,
            changes={change: value},
            actor=ACTOR,
            now=self.now,
        )

    @rule(data=st.data())
    def delete_company(self, data: st.DataObject) -> None:
        company_id = self._pick(data, t.companies)
        if company_id is None:
            return
        c = t.companies
        # What a CRM deletion does: children detach, people lose their company.
        if self.db.scalar(sa.select(sa.func.count()).where(c.c.parent_id == company_id)):
            return
        self.db.execute(c.delete().where(c.c.id == company_id))

    @rule(data=st.data())
    def link_or_unlink(self, data: st.DataObject) -> None:
        parent, child = self._pick(data, t.companies), self._pick(data, t.companies)
        if parent is None or child is None:
            return
        try:
            if data.draw(st.booleans()):
                companies.link(
                    self.db, workspace_id=self.ws, parent_id=parent, child_id=child, now=self.now
                )
            else:
                companies.unlink(self.db, workspace_id=self.ws, child_id=child, now=self.now)
        except (Conflict, InvalidInput, OptoutError):
            return

    @rule(data=st.data(), kind=st.sampled_from(["reply", "meeting", "email_sent"]))
    def record_activity(self, data: st.DataObject, kind: str) -> None:
        person_id = self._pick(data, t.people)
        if person_id is None:
            return
        people.record_activity(
            self.db,
            workspace_id=self.ws,
            person_id=person_id,
            kind=kind,
            source=data.draw(st.sampled_from(["crm", "optout"])),
            now=self.now,
            occurred_at=self.now - timedelta(hours=data.draw(st.integers(0, 24 * 60))),
        )

    @rule(status=st.sampled_from(STATUSES), domain=st.sampled_from(MAIL_DOMAINS))
    def bulk_update(self, status: str, domain: str) -> None:
        """A set-based write such as an import or a sync makes, beside every service."""
        p = t.people
        self.db.execute(
            p.update()
            .where(p.c.workspace_id == self.ws, p.c.email_domain == domain.lower())
            .values(status=status, updated_at=self.now)
        )

    # Deals ---------------------------------------------------------------------------------

    @rule(data=st.data(), closed=st.booleans(), when=st.none() | DATES)
    def add_or_edit_deal(self, data: st.DataObject, closed: bool, when: datetime | None) -> None:
        stage = data.draw(st.sampled_from(STAGES))
        if data.draw(st.booleans()):
            company_id = self._pick(data, t.companies)
            if company_id is None:
                return
            opportunities.create(
                self.db,
                workspace_id=self.ws,
                company_id=company_id,
                now=self.now,
                stage=stage,
                is_closed=closed,
                close_date=when,
            )
            return
        deal = self._pick(data, t.opportunities)
        if deal is None:
            return
        opportunities.update(
            self.db,
            workspace_id=self.ws,
            opportunity_id=deal,
            changes={"stage": stage, "is_closed": closed, "close_date": when},
            now=self.now,
        )

    @rule(data=st.data())
    def delete_deal(self, data: st.DataObject) -> None:
        deal = self._pick(data, t.opportunities)
        if deal is not None:
            self.db.execute(t.opportunities.delete().where(t.opportunities.c.id == deal))

    @rule(data=st.data(), add=st.booleans())
    def contact_role(self, data: st.DataObject, add: bool) -> None:
        deal, person_id = self._pick(data, t.opportunities), self._pick(data, t.people)
        if deal is None or person_id is None:
            return
        oc = t.opportunity_contacts
        mine = sa.and_(oc.c.opportunity_id == deal, oc.c.person_id == person_id)
        if not add:
            self.db.execute(oc.delete().where(mine))
            return
        if self.db.scalar(sa.select(sa.func.count()).where(mine)):
            return
        opportunities.add_contact(
            self.db, workspace_id=self.ws, opportunity_id=deal, person_id=person_id, now=self.now
        )

    # Suppressions, enrollments, the clock --------------------------------------------------

    @rule(data=st.data())
    def opt_out(self, data: st.DataObject) -> None:
        person_id = self._pick(data, t.people)
        if person_id is None:
            return
        email = people.get(self.db, workspace_id=self.ws, person_id=person_id)["email"]
        optouts.opt_out(
            self.db, workspace_id=self.ws, email=email, actor=ACTOR, channel="manual", now=self.now
        )

    @rule(data=st.data())
    def complain(self, data: st.DataObject) -> None:
        """A spam complaint moves only the person's marks: the stored matches hold (R36)."""
        person_id = self._pick(data, t.people)
        if person_id is None:
            return
        email = people.get(self.db, workspace_id=self.ws, person_id=person_id)["email"]
        optouts.complain(self.db, workspace_id=self.ws, email=email, actor=ACTOR, now=self.now)

    @rule(data=st.data())
    def enroll(self, data: st.DataObject) -> None:
        ids = self._ids(t.people)
        if not ids:
            return
        chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
        enrolling.enroll(
            self.db,
            workspace_id=self.ws,
            sequence_id=self.sequence_id,
            people=chosen,
            actor=ACTOR,
            now=self.now,
        )

    @rule(small=st.sampled_from([0, SMALL_QUEUE]))
    def choose_flush_path(self, small: int) -> None:
        """Queued rows are re-matched in Python (a few) or in SQL (many): switch between
        the two, so that both keep the index true (the rules' and the audiences')."""
        decision_index.SMALL_QUEUE = small
        audience_index.FEW = FEW_MEMBERS if small else 0
        note(f"queues of at most {small} rows re-matched in Python")

    @rule(move=CLOCK_MOVES)
    def move_clock(self, move: timedelta) -> None:
        self.now += move
        note(f"clock now {self.now}")

    @rule()
    def worker_pass(self) -> None:
        """What the worker does at the start of every pass: write the clock rules down,
        then enroll who the sequences that enroll by themselves have queued."""
        decision_index.advance(self.db, workspace_id=self.ws, now=self.now)
        decision_index.flush(self.db)
        automatic.run(self.db, workspace_id=self.ws, now=self.now)

    @rule(data=st.data())
    def edit_audience(self, data: st.DataObject) -> None:
        node = data.draw(filters(self.pool, Level.PEOPLE, depth=2))
        try:
            after = audiences.update(
                self.db,
                workspace_id=self.ws,
                audience_id=self.audience_id,
                name="Members",
                filter=node,
                persona=None,
                actor=ACTOR,
                now=self.now,
            )
        except (InvalidFilter, InvalidInput):
            return
        assert after.filter is not None
        note(f"audience now: {to_text(after.filter)}")

    # What must hold after every step -------------------------------------------------------

    @invariant()
    def stored_matches_are_true(self) -> None:
        if not self.sequence_id:
            return
        db = self.db
        decision_index.flush(db)
        for spec in fresh_rules.all_specs(db, workspace_id=self.ws):
            assert spec.matched_at is not None, f"{spec.name} was saved but not stored"
            held = set(db.scalars(index.live(spec, workspace_id=self.ws, now=spec.matched_at)))
            assert stored_rows(db, spec) == held, f"{spec.name}: stored rows are stale"
        assert decision_index.verify(db, workspace_id=self.ws, now=self.now) == []

    @invariant()
    def audience_members_are_true(self) -> None:
        if not self.sequence_id:
            return
        decision_index.flush(self.db)
        assert audience_index.verify(self.db, workspace_id=self.ws, now=self.now) == []

    @invariant()
    def no_member_is_forgotten(self) -> None:
        """Every stored member never enrolled in the sequence that enrolls by itself waits
        in its queue or is listed as not enrolled."""
        if not self.sequence_id:
            return
        db = self.db
        decision_index.flush(db)
        am, e, q, k = t.audience_matches, t.enrollments, t.enrollment_queue, t.enrollment_skips
        seq = self.automatic_id
        lost = set(
            db.scalars(
                sa.select(am.c.person_id).where(
                    am.c.audience_id == self.audience_id,
                    am.c.person_id.not_in(sa.select(e.c.person_id).where(e.c.sequence_id == seq)),
                    am.c.person_id.not_in(sa.select(q.c.person_id).where(q.c.sequence_id == seq)),
                    am.c.person_id.not_in(sa.select(k.c.person_id).where(k.c.sequence_id == seq)),
                )
            )
        )
        assert lost == set(), f"members neither enrolled, queued nor listed: {sorted(lost)}"

    @invariant()
    def decide_agrees_with_the_eligible_set(self) -> None:
        if not self.sequence_id:
            return
        for purpose in (Purpose.ENROLL, Purpose.SEND):
            agreed(
                self.db,
                workspace_id=self.ws,
                sequence_id=self.sequence_id,
                purpose=purpose,
                now=self.now,
            )

    @invariant()
    def explain_reads_the_same_from_the_index(self) -> None:
        if not self.sequence_id:
            return
        db = self.db
        where = situation(
            db,
            workspace_id=self.ws,
            sequence_id=self.sequence_id,
            purpose=Purpose.ENROLL,
            now=self.now,
        )
        ids = self._ids(t.people)
        plain = facts(db, workspace_id=self.ws, person_ids=ids, sequence_id=self.sequence_id)
        indexed = facts(
            db,
            workspace_id=self.ws,
            person_ids=ids,
            sequence_id=self.sequence_id,
            matches_for=where,
        )
        for person_id in ids:
            assert decide(indexed[person_id], where) == decide(plain[person_id], where)


@pytest.mark.parametrize("part", range(1, PARTS + 1), ids=lambda part: f"part{part}of{PARTS}")
def test_R14_decision_index_stays_true_under_random_writes_and_clock_moves(
    db: Connection, part: int, request: pytest.FixtureRequest
) -> None:
    run_state_machine_as_test(
        seeded_part(lambda: DecisionIndexMachine(db), request, part),
        settings=settings(
            max_examples=runs_of_part(RUNS, PARTS, part),
            stateful_step_count=STEPS_PER_RUN,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            # No shrinking: a failure prints its whole step list and seed at once, and CI
            # stays bounded (shrinking a 40-step machine can take many minutes).
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
