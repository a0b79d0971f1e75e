"""A reply, a meeting or a CRM activity moves the activity dates of the person and of their
company. The decision index re-matches those moves only against the rules that read the
dates that moved: a rule on a company's last activity sees a reply at once, for everyone
at the company, while a rule on the company's industry is not asked again (R14, R21)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services import audience_index, decision_index
from optout.services.directory import people
from tests.factories import World

_MIGRATION = importlib.import_module("optout.db.migrations.versions.0024_activity_dates_queue")


@pytest.fixture(params=[decision_index.SMALL_QUEUE, 0], ids=["few-in-python", "set-based"])
def small_queue(request: pytest.FixtureRequest) -> Iterator[int]:
    """Both ways a flush re-matches: a few rows in Python, many in SQL."""
    kept = decision_index.SMALL_QUEUE
    decision_index.SMALL_QUEUE = request.param
    try:
        yield request.param
    finally:
        decision_index.SMALL_QUEUE = kept


def _queued_kinds(db: Connection, workspace_id: int) -> set[str]:
    q = t.match_queue
    return set(db.scalars(sa.select(q.c.kind).where(q.c.workspace_id == workspace_id)))


def _stored(db: Connection, exclusion_id: int) -> set[int]:
    em = t.exclusion_matches
    return set(db.scalars(sa.select(em.c.person_id).where(em.c.exclusion_id == exclusion_id)))


def _replied(world: World, person_id: int, at: datetime) -> None:
    people.record_activity(
        world.db,
        workspace_id=world.ws,
        person_id=person_id,
        kind="reply",
        source="email",
        now=world.now,
        occurred_at=at,
    )


def _reply_dates(db: Connection, person_id: int, at: datetime) -> None:
    """What recording a reply writes on the person and their company (`activities`)."""
    p, c = t.people, t.companies
    dates = {"last_replied_at": at, "last_activity_at": at, "last_activity_any_at": at}
    db.execute(p.update().where(p.c.id == person_id).values(**dates))
    company = sa.select(p.c.company_id).where(p.c.id == person_id).scalar_subquery()
    db.execute(c.update().where(c.c.id == company).values(**dates))


def test_R14_a_reply_re_matches_a_people_rule_on_the_company_last_activity(
    db: Connection, now: datetime, small_queue: int
) -> None:
    world = World(db, now)
    world.sequence()
    active = world.exclusion(
        "Company active this week", "people", "company.last_activity_at within last 7 days"
    )
    replied = world.exclusion(
        "Company replied this week", "company", "company.last_replied_at within last 7 days"
    )
    ann = world.person("ann@initech.com", company="initech.com")
    ben = world.person("ben@initech.com", company="initech.com")
    world.person("cy@globex.com", company="globex.com")
    decision_index.flush(db)
    assert _stored(db, active.exclusion.id) == set()
    assert world.explain("ben@initech.com").decision.allowed

    _reply_dates(db, ann, now)
    # Only the dates moved: the person and the company are queued as such, nothing else.
    assert _queued_kinds(db, world.ws) == {"r", "a", "d", "b"}
    decision_index.flush(db)

    assert _queued_kinds(db, world.ws) == set()
    # Ben did nothing; his company did, and the rule reads the company's date.
    assert _stored(db, active.exclusion.id) == {ann, ben}
    assert not world.explain("ben@initech.com").decision.allowed
    assert world.explain("cy@globex.com").decision.allowed
    eg, c = t.exclusion_group_matches, t.companies
    initech_group = db.scalar(sa.select(c.c.group_id).where(c.c.domain == "initech.com"))
    stored_groups = set(
        db.scalars(sa.select(eg.c.group_id).where(eg.c.exclusion_id == replied.exclusion.id))
    )
    assert stored_groups == {initech_group}
    assert decision_index.verify(db, workspace_id=world.ws, now=now) == []


def test_R14_activity_dates_alone_do_not_re_match_a_rule_on_the_company_industry(
    db: Connection, now: datetime, small_queue: int
) -> None:
    world = World(db, now)
    world.sequence()
    banks = world.exclusion("Banks", "people", 'company.fields.industry = "Banking"')
    world.company("initech.com", industry="Software")
    ann = world.person("ann@initech.com", company="initech.com")
    ben = world.person("ben@initech.com", company="initech.com")
    decision_index.flush(db)
    assert _stored(db, banks.exclusion.id) == set()
    # A stored row the rule does not match: it stays only as long as nothing re-matches
    # Ben against this rule, which is what this test watches.
    db.execute(t.exclusion_matches.insert().values(exclusion_id=banks.exclusion.id, person_id=ben))

    _reply_dates(db, ann, now)
    assert _queued_kinds(db, world.ws) == {"r", "a", "d", "b"}
    decision_index.flush(db)
    assert _stored(db, banks.exclusion.id) == {ben}
    # The whole reply (its activity, the re-check of enrollments) leaves it too.
    _replied(world, ann, now)
    assert _stored(db, banks.exclusion.id) == {ben}

    # Any other change of the company is re-matched against the rule, as before.
    c = t.companies
    db.execute(c.update().where(c.c.domain == "initech.com").values(name="Initech"))
    assert _queued_kinds(db, world.ws) == {"c", "g"}
    decision_index.flush(db)
    assert _stored(db, banks.exclusion.id) == set()
    assert decision_index.verify(db, workspace_id=world.ws, now=now) == []


def test_R14_an_audience_on_the_company_last_reply_sees_a_reply_at_once(
    db: Connection, now: datetime, small_queue: int
) -> None:
    world = World(db, now)
    audience = world.audience("Replied lately", "company.last_replied_at within last 7 days")
    ann = world.person("ann@initech.com", company="initech.com")
    ben = world.person("ben@initech.com", company="initech.com")
    audience_index.store(db, workspace_id=world.ws, audience_id=audience, now=now)
    am = t.audience_matches
    members = sa.select(am.c.person_id).where(am.c.audience_id == audience)
    assert set(db.scalars(members)) == set()

    _replied(world, ann, now)
    decision_index.flush(db)

    assert set(db.scalars(members)) == {ann, ben}
    assert audience_index.verify(db, workspace_id=world.ws, now=now) == []


def test_the_activity_columns_are_the_fields_the_index_treats_apart() -> None:
    prefixes = {"people": "person", "companies": "company"}
    fields = {
        f"{prefixes[table]}.{column}"
        for table, columns in _MIGRATION.ACTIVITY_COLUMNS.items()
        for column in columns
    }
    assert fields == decision_index.ACTIVITY_FIELDS
