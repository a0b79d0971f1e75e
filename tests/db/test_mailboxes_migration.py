"""Migration 0017: every From address of the existing sequences becomes a mailbox of its
workspace, with no limit and no gap, and each enrollment is given its sequence's; both
databases go down and up again (R37)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db.engine import MIGRATING
from optout.db.migrate import downgrade, upgrade

NOW = datetime(2026, 11, 2, 9, 0, 0)
BEFORE = "0016_sending_windows"


def _insert(db: sa.Connection, sql: str, **values: object) -> int:
    return int(db.execute(sa.text(sql + " RETURNING id"), values).scalar_one())


def test_R37_the_from_addresses_of_existing_sequences_become_mailboxes(
    fresh_engine: Engine,
) -> None:
    downgrade(fresh_engine, BEFORE)
    with fresh_engine.connect() as db, db.begin():
        # Rows of the older schema: today's re-match at commit reads tables it lacks.
        db.info[MIGRATING] = True
        ws = _insert(
            db,
            "INSERT INTO workspaces (slug, name, mass_exclusion_share, mass_unenroll_limit, "
            "auto_opt_out_on_unsubscribe_reply, create_companies_from_email_domain, "
            "created_at) VALUES ('acme', 'Acme', 0.2, 1000, true, true, :now)",
            now=NOW,
        )
        ruleset = _insert(
            db,
            "INSERT INTO rulesets (workspace_id, name, exclusions_enabled, "
            "reenroll_cooldown_days, created_at) VALUES (:ws, 'Default', true, 0, :now)",
            ws=ws,
            now=NOW,
        )
        sequences = [
            _insert(
                db,
                "INSERT INTO sequences (workspace_id, name, ruleset_id, status, from_address, "
                "reply_to, created_at) VALUES (:ws, :name, :r, 'active', :sender, '', :now)",
                ws=ws,
                name=name,
                r=ruleset,
                sender=sender,
                now=NOW,
            )
            for name, sender in (
                ("One", "Sam Seller <Sam@Acme-Sales.com>"),
                ("Two", "sam@acme-sales.com"),
                ("Three", "ann@acme-sales.com"),
            )
        ]
        person = _insert(
            db,
            "INSERT INTO people (workspace_id, email, email_domain, first_name, last_name, "
            "title, status, fields, created_at, updated_at) VALUES (:ws, 'lead@client.com', "
            "'client.com', '', '', '', '', '{}', :now, :now)",
            ws=ws,
            now=NOW,
        )
        for sequence in sequences:
            db.execute(
                sa.text(
                    "INSERT INTO enrollments (workspace_id, sequence_id, person_id, status, "
                    "source, next_position, enrolled_at, enrolled_by) VALUES "
                    "(:ws, :s, :p, 'in_progress', 'manual', 0, :now, 'test')"
                ),
                {"ws": ws, "s": sequence, "p": person, "now": NOW},
            )

    upgrade(fresh_engine)
    with fresh_engine.connect() as db:
        boxes = db.execute(
            sa.text(
                "SELECT address, display_name, daily_limit, min_gap_seconds, status "
                "FROM mailboxes ORDER BY address"
            )
        ).all()
        given = db.execute(
            sa.text(
                "SELECT s.name, m.address FROM enrollments e JOIN sequences s ON "
                "s.id = e.sequence_id JOIN mailboxes m ON m.id = e.mailbox_id ORDER BY s.name"
            )
        ).all()
    assert [tuple(b) for b in boxes] == [
        ("ann@acme-sales.com", "", None, 0, "active"),
        ("sam@acme-sales.com", "Sam Seller", None, 0, "active"),
    ]
    assert [tuple(g) for g in given] == [
        ("One", "sam@acme-sales.com"),
        ("Three", "ann@acme-sales.com"),
        ("Two", "sam@acme-sales.com"),
    ]

    downgrade(fresh_engine, BEFORE)
    with fresh_engine.connect() as db:
        inspector = sa.inspect(db)
        assert "mailboxes" not in inspector.get_table_names()
        assert "mailbox_id" not in {c["name"] for c in inspector.get_columns("enrollments")}
        assert db.scalar(sa.text("SELECT count(*) FROM enrollments")) == 3
    upgrade(fresh_engine)
