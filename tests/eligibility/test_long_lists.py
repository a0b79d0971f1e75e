"""Thirteen exclusion lists of 20,000 addresses each answer in one query on both databases:
each long list travels as one JSON (SQLite) or array (PostgreSQL) parameter, so SQLite's
default limit on parameters (32,766) is never reached (R14, R16, R22, R29)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import Purpose
from optout.eligibility.model import ExclusionSpec
from optout.eligibility.sql import eligible_people
from optout.filters import Condition, Level
from optout.services import decision_index
from optout.services.eligibility import situation
from optout.services.exclusions.preview import preview
from optout.services.filters import stored
from tests.factories import World

LISTS = 13
ADDRESSES = 20_000


def _addresses(k: int) -> tuple[str, ...]:
    return tuple(f"p{i}@list{k}.example" for i in range(ADDRESSES))


def _store_lists(db: Connection, ws: int, now: datetime) -> None:
    """Thirteen people-level list rules, written as a bulk import of rules would write
    them: stored form, not yet in the decision index (read from scratch until built)."""
    db.execute(
        t.exclusions.insert(),
        [
            {
                "workspace_id": ws,
                "name": f"Imported list {k}",
                "level": Level.PEOPLE.value,
                "filter": stored(Condition("person.email", "in", _addresses(k))),
                "enabled": True,
                "exclude_from_sequences": False,
                "unenroll_existing_on_save": False,
                "created_by": "test@optout",
                "created_at": now,
                "updated_at": now,
            }
            for k in range(LISTS)
        ],
    )


def test_R16_thirteen_lists_of_20000_addresses_answer_in_one_query(
    db: Connection, world: World, now: datetime
) -> None:
    listed = [world.person(f"p{k * 7}@list{k}.example") for k in range(LISTS)]
    free = [world.person(f"someone{i}@elsewhere.example") for i in range(3)]
    sequence_id = world.sequence()
    _store_lists(db, world.ws, now)
    assert decision_index.unstored(db, workspace_id=world.ws) == LISTS

    where = situation(
        db, workspace_id=world.ws, sequence_id=sequence_id, purpose=Purpose.ENROLL, now=now
    )
    assert set(db.scalars(eligible_people(where))) == set(free)

    explained = world.explain(f"p{3 * 7}@list3.example", "Outbound")
    assert not explained.decision.allowed
    assert any("Imported list 3" in o.summary for o in explained.decision.outcomes if o.blocks)

    draft = ExclusionSpec(
        id=0,
        name="Another list",
        level=Level.PEOPLE,
        filter=Condition("person.email", "in", _addresses(5)),
        enabled=True,
        exclude_from_sequences=False,
    )
    assert preview(db, workspace_id=world.ws, exclusion=draft, now=now).people_matched == 1

    decision_index.advance(db, workspace_id=world.ws, now=now)
    assert decision_index.unstored(db, workspace_id=world.ws) == 0
    stored_people = set(db.scalars(sa.select(t.exclusion_matches.c.person_id)))
    assert stored_people == set(listed)
    assert set(db.scalars(eligible_people(where))) == set(free)
