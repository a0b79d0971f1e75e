"""The person row's opt-out, bounce and complaint marks, which the eligible set reads,
follow the suppressions on every path: an opt-out, a bounce, a complaint, an audited
clearing, a person added after the opt-out, an address changed to or away from a
suppressed one (R1, R7, R33, R36)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services.suppression import optouts
from tests.factories import World

ACTOR = "test@optout"


def _marks(db: Connection, person_id: int) -> tuple[bool, bool]:
    p = t.people
    row = db.execute(sa.select(p.c.opted_out, p.c.bounced).where(p.c.id == person_id)).one()
    return bool(row.opted_out), bool(row.bounced)


def _queued(db: Connection, workspace_id: int) -> int:
    q = t.match_queue
    return int(db.scalar(sa.select(sa.func.count()).where(q.c.workspace_id == workspace_id)))


def test_R1_R7_R33_marks_follow_opt_outs_bounces_and_clearing(
    db: Connection, now: datetime
) -> None:
    world = World(db, now)
    ann = world.person("Ann@Acme.com")
    ben = world.person("ben@acme.com")
    assert _marks(db, ann) == (False, False)

    optouts.opt_out(
        db, workspace_id=world.ws, email="ann@acme.com", actor=ACTOR, channel="manual", now=now
    )
    optouts.bounce(db, workspace_id=world.ws, email="ann@acme.com", actor=ACTOR, now=now)
    optouts.bounce(db, workspace_id=world.ws, email="ben@acme.com", actor=ACTOR, now=now)
    assert _marks(db, ann) == (True, True)
    assert _marks(db, ben) == (False, True)

    optouts.clear_opt_out(
        db,
        workspace_id=world.ws,
        email="ann@acme.com",
        actor=ACTOR,
        reason="asked back in",
        now=now,
    )
    assert _marks(db, ann) == (False, True)


def test_R1_a_person_added_after_the_opt_out_or_moved_to_its_address_is_marked(
    db: Connection, now: datetime
) -> None:
    world = World(db, now)
    optouts.opt_out(
        db, workspace_id=world.ws, email="cy@initech.com", actor=ACTOR, channel="manual", now=now
    )
    cy = world.person("cy@initech.com")
    dee = world.person("dee@initech.com")
    assert _marks(db, cy) == (True, False)

    p = t.people
    db.execute(p.update().where(p.c.id == dee).values(email="cy@initech.com"))
    db.execute(p.update().where(p.c.id == cy).values(email="cy.new@initech.com"))

    assert _marks(db, dee) == (True, False)
    assert _marks(db, cy) == (False, False)


def test_R1_a_mark_changing_queues_no_rematch_of_the_decision_index(
    db: Connection, now: datetime
) -> None:
    world = World(db, now)
    world.person("ed@hooli.io")
    q = t.match_queue
    db.execute(q.delete().where(q.c.workspace_id == world.ws))

    optouts.opt_out(
        db, workspace_id=world.ws, email="ed@hooli.io", actor=ACTOR, channel="manual", now=now
    )

    assert _queued(db, world.ws) == 0


def _complained(db: Connection, person_id: int) -> bool:
    p = t.people
    return bool(db.scalar(sa.select(p.c.complained).where(p.c.id == person_id)))


def test_R36_the_complaint_mark_follows_complaints_clearing_and_new_people(
    db: Connection, now: datetime
) -> None:
    world = World(db, now)
    ann = world.person("ann@acme.com")
    optouts.complain(db, workspace_id=world.ws, email="ann@acme.com", actor=ACTOR, now=now)
    later = world.person("ANN@acme.com")  # a duplicate made after the complaint (R1)
    assert _complained(db, ann)
    assert _complained(db, later)
    assert _marks(db, ann) == (False, False)

    optouts.clear_opt_out(
        db,
        workspace_id=world.ws,
        email="ann@acme.com",
        actor=ACTOR,
        reason="reported by mistake, confirmed by phone",
        now=now,
        kind="complaint",
    )
    assert not _complained(db, ann)
    assert not _complained(db, later)


def test_R36_a_complaint_mark_changing_queues_no_rematch_of_the_decision_index(
    db: Connection, now: datetime
) -> None:
    world = World(db, now)
    world.person("fay@hooli.io")
    q = t.match_queue
    db.execute(q.delete().where(q.c.workspace_id == world.ws))

    optouts.complain(db, workspace_id=world.ws, email="fay@hooli.io", actor=ACTOR, now=now)

    assert _queued(db, world.ws) == 0
