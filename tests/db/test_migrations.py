"""The migrations build the schema `tables.py` describes, on SQLite and PostgreSQL, and the
latest one goes down and up again without letting anyone through (R36)."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

from optout.db import tables as t
from optout.db.migrate import downgrade, upgrade
from optout.services import audience_index
from optout.services.sequences import audiences
from optout.services.suppression import optouts
from tests.factories import World

NOW = datetime(2026, 11, 2, 9, 0, 0)
ACTOR = "test@optout"
BEFORE_COMPLAINTS = "0014_domain_skeleton_indexes"
# Indexes PostgreSQL alone has (pattern operators), or that SQLAlchemy cannot reflect there
# as written: made by the migrations on purpose, not in `tables.py`.
POSTGRESQL_ONLY = {"ix_companies_ws_domain_prefix", "ix_people_ws_email_prefix"}
UNREFLECTED = {"ix_people_ws_full_name"}


def _differences(db: Connection) -> list[object]:
    context = MigrationContext.configure(db, opts={"compare_type": True})
    found = []
    for difference in compare_metadata(context, t.metadata):
        if isinstance(difference, tuple) and difference[0] in ("add_index", "remove_index"):
            name = difference[1].name
            if name in UNREFLECTED or (name in POSTGRESQL_ONLY and difference[0] == "remove_index"):
                continue
        found.append(difference)
    return found


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_R36_the_migrated_schema_is_the_one_tables_describes(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as db:
        assert _differences(db) == []
        if db.dialect.name == "sqlite":  # CHECK constraints read back as written
            inspector = sa.inspect(db)
            for table in t.metadata.sorted_tables:
                written = {
                    c.name: str(c.sqltext)
                    for c in table.constraints
                    if isinstance(c, sa.CheckConstraint)
                }
                stored = {
                    c["name"]: c["sqltext"] for c in inspector.get_check_constraints(table.name)
                }
                assert stored == written, table.name


def _inbound_complaint(db: Connection, workspace_id: int, key: str) -> None:
    db.execute(
        t.inbound_messages.insert().values(
            workspace_id=workspace_id,
            received_at=NOW,
            source="file",
            dedup_key=key * 64,
            raw=b"report",
            raw_size=6,
            kind="complaint",
            rule="feedback_report",
            outcome="complained",
        )
    )


def _marks(db: Connection, email: str) -> dict[str, bool]:
    columns = [c["name"] for c in sa.inspect(db).get_columns("people")]
    marks = [c for c in ("opted_out", "bounced", "complained") if c in columns]
    row = db.execute(
        sa.text(f"SELECT {', '.join(marks)} FROM people WHERE email = :e"), {"e": email}
    ).one()
    return {mark: bool(value) for mark, value in zip(marks, row, strict=True)}


def test_R36_downgrade_keeps_complained_addresses_suppressed_and_upgrade_restores_complaints(
    fresh_engine: Engine,
) -> None:
    with fresh_engine.begin() as db:
        world = World(db, NOW)
        ws = world.ws
        for email in ("ann@acme.com", "ben@acme.com", "cy@acme.com"):
            world.person(email)
        optouts.complain(db, workspace_id=ws, email="ann@acme.com", actor=ACTOR, now=NOW)
        optouts.complain(db, workspace_id=ws, email="ben@acme.com", actor=ACTOR, now=NOW)
        optouts.opt_out(
            db, workspace_id=ws, email="ben@acme.com", actor=ACTOR, channel="manual", now=NOW
        )
        _inbound_complaint(db, ws, "a")

    downgrade(fresh_engine, BEFORE_COMPLAINTS)

    with fresh_engine.begin() as db:
        kinds = db.execute(sa.text("SELECT email, kind FROM suppressions ORDER BY email")).all()
        assert [tuple(row) for row in kinds] == [
            ("ann@acme.com", "opt_out"),
            ("ben@acme.com", "opt_out"),
        ]
        assert _marks(db, "ann@acme.com") == {"opted_out": True, "bounced": False}
        assert db.scalar(sa.text("SELECT kind FROM inbound_messages")) == "unclassified"
        # The earlier triggers keep the marks again, and the earlier check holds. (Written
        # in SQL: today's services expect today's schema, mailboxes and all.)
        db.execute(
            sa.text(
                "INSERT INTO suppressions (workspace_id, email, kind, since, actor, channel, "
                "reason) VALUES (:ws, 'cy@acme.com', 'bounce', :now, 'a', 'bounce', '')"
            ),
            {"ws": ws, "now": NOW},
        )
        assert _marks(db, "cy@acme.com") == {"opted_out": False, "bounced": True}
        with pytest.raises(sa.exc.IntegrityError), db.begin_nested():
            db.execute(
                sa.text(
                    "INSERT INTO suppressions (workspace_id, email, kind, since, actor, channel, "
                    "reason) VALUES (:ws, 'cy@acme.com', 'complaint', :now, 'a', 'complaint', '')"
                ),
                {"ws": ws, "now": NOW},
            )

    upgrade(fresh_engine)

    with fresh_engine.begin() as db:
        optouts.complain(db, workspace_id=ws, email="cy@acme.com", actor=ACTOR, now=NOW)
        assert _marks(db, "cy@acme.com") == {
            "opted_out": False,
            "bounced": True,
            "complained": True,
        }
        assert _marks(db, "ann@acme.com")["complained"] is False
        _inbound_complaint(db, ws, "b")


AUDIENCE_MATCHES_WITH_ROWID = "0022_outbound_message_id_index"


def _audience_table_sql(db: Connection) -> str:
    return str(
        db.scalar(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"),
            {"n": "audience_matches"},
        )
    )


def test_R41_an_audiences_stored_members_are_kept_down_and_up_the_migration_of_their_table(
    fresh_engine: Engine,
) -> None:
    with fresh_engine.begin() as db:
        world = World(db, NOW)
        ws = world.ws
        directors = [world.person(f"d{n}@acme.com", title="Director") for n in range(3)]
        world.person("eng@acme.com", title="Engineer")
        audience_id = audiences.create(
            db,
            workspace_id=ws,
            name="Directors",
            filter={"field": "person.title", "op": "contains", "value": "Director"},
            now=NOW,
        )
        audience_index.store(db, workspace_id=ws, audience_id=audience_id, now=NOW)

    def members() -> list[int]:
        with fresh_engine.connect() as db:
            return list(
                db.scalars(sa.text("SELECT person_id FROM audience_matches ORDER BY person_id"))
            )

    sqlite = fresh_engine.dialect.name == "sqlite"
    if sqlite:
        with fresh_engine.connect() as db:
            assert "WITHOUT ROWID" in _audience_table_sql(db)
    assert members() == sorted(directors)

    downgrade(fresh_engine, AUDIENCE_MATCHES_WITH_ROWID)
    assert members() == sorted(directors)
    if sqlite:
        with fresh_engine.connect() as db:
            assert "WITHOUT ROWID" not in _audience_table_sql(db)

    upgrade(fresh_engine)
    assert members() == sorted(directors)
    with fresh_engine.begin() as db:
        assert _differences(db) == []
        if sqlite:
            assert "WITHOUT ROWID" in _audience_table_sql(db)
        # The person index still answers, and a deleted person's memberships go with them.
        db.execute(sa.text("DELETE FROM people WHERE id = :p"), {"p": directors[0]})
        assert audience_index.verify(db, workspace_id=ws, now=NOW) == []
    assert members() == sorted(directors[1:])
