"""A long list travels as one parameter and is still answered through an index: a
worker asks about 200 people and 600 rules at once, and a scan of every stored match
per question cost seconds at 1,000,000 people."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.filters.sqlfunc import LONG_LIST, in_list

_IDS = list(range(1, 2 * LONG_LIST))


def test_a_long_list_of_ids_is_searched_through_the_index_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'optout.sqlite3'}")
    upgrade(engine)
    em = t.exclusion_matches
    query = sa.select(em.c.exclusion_id).where(
        in_list(em.c.person_id, _IDS), in_list(em.c.exclusion_id, _IDS)
    )
    sent: list[tuple[str, object]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _keep(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
        sent.append((statement, params))

    with engine.connect() as db:
        assert db.execute(query).all() == []
        statement, params = sent[-1]
        plan = [row[3] for row in db.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)]
    engine.dispose()
    assert any(step.startswith("SEARCH exclusion_matches") for step in plan), plan
    assert not any(step.startswith("SCAN exclusion_matches") for step in plan), plan


def test_a_long_list_of_ids_stays_integers_on_postgresql() -> None:
    text = str(in_list(t.people.c.id, _IDS).compile(dialect=postgresql.dialect()))
    assert "BIGINT[]" in text
    assert "FLOAT8" not in text
    amounts = str(in_list(t.opportunities.c.amount, _IDS).compile(dialect=postgresql.dialect()))
    assert "FLOAT8[]" in amounts
