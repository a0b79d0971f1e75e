"""`optout crm sync --now`: a sync at a given time, for reproducible scripts, like every
other command where the clock decides (R31)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from optout.cli import app
from optout.clock import utcnow
from optout.db import tables as t
from tests.crm.conftest import ENV
from tests.crm.emulators.hubspot import HubSpot
from tests.factories import World


def test_R31_crm_sync_now_records_the_sync_and_the_opt_out_at_the_given_time(
    fresh_engine: Engine, start_hubspot: Callable[..., HubSpot]
) -> None:
    hubspot = start_hubspot()
    hubspot.contact("ann@acme.com", hs_email_optout=True)
    with fresh_engine.begin() as db:
        World(db, utcnow(), slug="acme-sales")
    env = {
        "OPTOUT_DATABASE_URL": fresh_engine.url.render_as_string(hide_password=False),
        "OPTOUT_WORKSPACE": "acme-sales",
        "COLUMNS": "200",
        **ENV,
    }
    runner = CliRunner()
    connected = runner.invoke(
        app,
        ["crm", "connect", "hubspot", "--base-url", hubspot.url,
         "--token-env", "OPTOUT_TEST_HUBSPOT_TOKEN"],
        env=env,
    )  # fmt: skip
    assert connected.exit_code == 0, connected.output
    bad = runner.invoke(app, ["crm", "sync", "--now", "soon"], env=env)
    assert bad.exit_code == 2
    synced = runner.invoke(app, ["crm", "sync", "--now", "2030-01-02T03:04:05", "--json"], env=env)
    assert synced.exit_code == 0, synced.output
    at = datetime(2030, 1, 2, 3, 4, 5)
    with fresh_engine.connect() as db:
        assert db.scalar(sa.select(t.crm_sync_log.c.started_at)) == at
        assert db.scalar(sa.select(t.suppressions.c.since)) == at
