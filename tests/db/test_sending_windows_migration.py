"""Migration 0016: sequences that existed before keep sending at any hour; people get a
time zone; both databases go down and up again (R38)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db.migrate import downgrade, upgrade

NOW = datetime(2026, 11, 2, 9, 0, 0)
BEFORE = "0015_complaints"


def _schedule(engine: Engine) -> tuple[int, int, int, bool]:
    with engine.connect() as db:
        row = db.execute(
            sa.text(
                "SELECT send_days, send_from_minute, send_until_minute, business_day_waits "
                "FROM sequences"
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2]), bool(row[3])


def test_R38_an_existing_sequence_keeps_sending_at_any_hour_after_the_upgrade(
    fresh_engine: Engine,
) -> None:
    downgrade(fresh_engine, BEFORE)
    with fresh_engine.begin() as db:
        ws = db.execute(
            sa.text(
                "INSERT INTO workspaces (slug, name, mass_exclusion_share, mass_unenroll_limit, "
                "auto_opt_out_on_unsubscribe_reply, create_companies_from_email_domain, "
                "created_at) VALUES ('acme', 'Acme', 0.2, 1000, true, true, :now) RETURNING id"
            ),
            {"now": NOW},
        ).scalar_one()
        ruleset = db.execute(
            sa.text(
                "INSERT INTO rulesets (workspace_id, name, exclusions_enabled, "
                "reenroll_cooldown_days, created_at) "
                "VALUES (:ws, 'Default', true, 0, :now) RETURNING id"
            ),
            {"ws": ws, "now": NOW},
        ).scalar_one()
        db.execute(
            sa.text(
                "INSERT INTO sequences (workspace_id, name, ruleset_id, status, from_address, "
                "reply_to, created_at) VALUES (:ws, 'Old', :r, 'active', 'a@acme.com', '', :now)"
            ),
            {"ws": ws, "r": ruleset, "now": NOW},
        )

    upgrade(fresh_engine)
    assert _schedule(fresh_engine) == (127, 0, 1440, False)
    with fresh_engine.begin() as db:
        db.execute(
            sa.text(
                "INSERT INTO people (workspace_id, email, email_domain, first_name, last_name, "
                "title, status, fields, created_at, updated_at, time_zone) VALUES (:ws, "
                "'ann@acme.com', 'acme.com', '', '', '', '', '{}', :now, :now, 'Europe/Berlin')"
            ),
            {"ws": ws, "now": NOW},
        )
        # An update of the zone alone is a change like any other (the queue's trigger).
        db.execute(sa.text("UPDATE people SET time_zone = 'Asia/Tokyo'"))

    downgrade(fresh_engine, BEFORE)
    with fresh_engine.connect() as db:
        columns = {c["name"] for c in sa.inspect(db).get_columns("people")}
        assert "time_zone" not in columns
        db.execute(sa.text("UPDATE people SET title = 'CTO'"))
    upgrade(fresh_engine)
    assert _schedule(fresh_engine) == (127, 0, 1440, False)
