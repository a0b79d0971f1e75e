"""Our own sends move the person's and the company's activity dates. The decision index
re-matches those moves only where a rule reads the dates our sends move, so a worker
recording sent emails does not re-match every rule; a rule that does read them still sees
each send at once (R21 B, R14)."""

from __future__ import annotations

import importlib
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.services import decision_index
from optout.services.directory import people
from tests.factories import World

_MIGRATION = importlib.import_module("optout.db.migrations.versions.0013_own_sends_queue")
_ACTIVITY = importlib.import_module("optout.db.migrations.versions.0024_activity_dates_queue")


def _queued_kinds(db: Connection, workspace_id: int) -> set[str]:
    q = t.match_queue
    return set(db.scalars(sa.select(q.c.kind).where(q.c.workspace_id == workspace_id)))


def _sent(world: World, person_id: int) -> None:
    people.record_activity(
        world.db,
        workspace_id=world.ws,
        person_id=person_id,
        kind="email_sent",
        source="optout",
        now=world.now,
        occurred_at=world.now,
    )


def test_R21_a_send_of_ours_is_not_re_matched_where_no_rule_reads_its_dates(
    db: Connection, now: datetime
) -> None:
    world = World(db, now)
    world.sequence()
    world.exclusion("Founders", "people", 'person.title contains "founder"')
    world.exclusion("Quiet companies", "company", "company.last_activity_at within last 7 days")
    ann = world.person("ann@initech.com", company="initech.com", title="CFO")
    world.person("ben@initech.com", company="initech.com")
    decision_index.flush(db)

    # What recording a sent email writes (`sending.outcome`).
    p, c = t.people, t.companies
    db.execute(
        p.update().where(p.c.id == ann).values(last_emailed_at=now, last_activity_any_at=now)
    )
    db.execute(c.update().where(c.c.domain == "initech.com").values(last_activity_any_at=now))
    assert _queued_kinds(db, world.ws) == {"a", "b"}
    decision_index.flush(db)

    assert _queued_kinds(db, world.ws) == set()
    assert world.explain("ann@initech.com").decision.allowed
    assert decision_index.verify(db, workspace_id=world.ws, now=now) == []


def test_R21_a_rule_on_the_dates_our_sends_move_sees_each_send_at_once(
    db: Connection, now: datetime
) -> None:
    world = World(db, now)
    world.sequence()
    world.exclusion("Emailed this week", "people", "person.last_emailed_at within last 7 days")
    world.exclusion(
        "Touched companies", "company", "company.last_activity_any_at within last 7 days"
    )
    ann = world.person("ann@initech.com", company="initech.com")
    world.person("ben@initech.com", company="initech.com")
    world.person("cy@globex.com", company="globex.com")
    assert world.explain("ben@initech.com").decision.allowed

    _sent(world, ann)

    assert not world.explain("ann@initech.com").decision.allowed
    # Ben works at the company the send touched, Cy elsewhere.
    assert not world.explain("ben@initech.com").decision.allowed
    assert world.explain("cy@globex.com").decision.allowed
    assert decision_index.verify(db, workspace_id=world.ws, now=now) == []


def test_R21_an_update_that_moves_our_dates_and_another_column_re_matches_the_other(
    db: Connection, now: datetime
) -> None:
    world = World(db, now)
    world.sequence()
    world.exclusion("Founders", "people", 'person.title contains "founder"')
    ann = world.person("ann@initech.com", title="CFO")
    p = t.people
    db.execute(p.update().where(p.c.id == ann).values(title="Founder", last_emailed_at=now))

    assert not world.explain("ann@initech.com").decision.allowed
    assert decision_index.verify(db, workspace_id=world.ws, now=now) == []


def test_the_own_send_columns_are_the_fields_the_index_treats_apart() -> None:
    prefixes = {"people": "person", "companies": "company"}
    fields = {
        f"{prefixes[table]}.{column}"
        for table, columns in _MIGRATION.OWN_SEND_COLUMNS.items()
        for column in columns
    }
    assert fields == decision_index.OWN_SEND_FIELDS


def test_every_other_column_moves_the_update_queue_on_sqlite(tmp_path: Path) -> None:
    """SQLite's update triggers list the columns they compare: a column added later must
    be added to them, or its changes would never reach the stored matches. The dates our
    sends and activity move are queued by their own triggers instead. (PostgreSQL's
    compare the whole rows.)"""
    engine = create_engine(f"sqlite:///{tmp_path / 'optout.sqlite3'}")
    upgrade(engine)
    flags = {"opted_out", "bounced", "complained"}
    with engine.connect() as db:
        for table, own in _MIGRATION.OWN_SEND_COLUMNS.items():
            trigger = db.scalar(
                sa.text("SELECT sql FROM sqlite_master WHERE name = :n"),
                {"n": f"match_queue_{table}_update"},
            )
            assert trigger is not None
            condition = trigger.split(" BEGIN\n", 1)[0]
            apart = set(own) | set(_ACTIVITY.ACTIVITY_COLUMNS[table]) | flags
            for column in sa.inspect(db).get_columns(table):
                name = column["name"]
                compared = f'NEW."{name}" IS NOT OLD."{name}"' in condition
                assert compared is (name not in apart), (table, name)
    engine.dispose()
