"""`optout crm ...` against a real database and the HubSpot emulator (R31, R32)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from optout.cli import app
from optout.clock import utcnow
from optout.crypto import new_key
from optout.db import tables as t
from tests.crm.conftest import ENV, HUBSPOT_TOKEN
from tests.crm.emulators.hubspot import HubSpot
from tests.factories import World


def test_R31_R32_connect_map_sync_and_log_from_the_command_line(
    fresh_engine: Engine, start_hubspot: Callable[..., HubSpot]
) -> None:
    hubspot = start_hubspot()
    acme = hubspot.company("acme.com", "Acme")
    ann = hubspot.contact("ann@acme.com", company=acme, hs_email_optout=True)
    hubspot.contact("bob@acme.com", company=acme)
    with fresh_engine.begin() as db:
        World(db, utcnow(), slug="acme-sales").sequence("Outbound")
    runner = CliRunner()
    env = {
        "OPTOUT_DATABASE_URL": fresh_engine.url.render_as_string(hide_password=False),
        "OPTOUT_WORKSPACE": "acme-sales",
        "COLUMNS": "200",
        **ENV,
    }

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    connected = run("crm", "connect", "hubspot", "--base-url", hubspot.url,
                    "--token-env", "OPTOUT_TEST_HUBSPOT_TOKEN",
                    "--setting", "search_page_size=50", "--json")  # fmt: skip
    assert connected.exit_code == 0, connected.output
    assert "pat-na1" not in connected.stdout  # only the variable's name is kept
    assert '"webhook_path": "/crm/webhooks/hubspot/1"' in connected.stdout
    mapped = run("crm", "map", "contacts", "hs_email_optout", "email_opt_out", "--mode",
                 "read_write")  # fmt: skip
    assert mapped.exit_code == 0, mapped.output
    assert "(read_write)" in mapped.stdout

    synced = run("crm", "sync")
    assert synced.exit_code == 0, synced.output
    assert "hubspot: ok" in synced.stdout
    assert "opted out 1 address(es)" in synced.stdout
    with fresh_engine.connect() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(t.people)) == 2

    log = run("crm", "log")
    assert log.exit_code == 0, log.output
    assert "manual" in log.stdout
    assert "contacts" in log.stdout

    refused = run("crm", "connect", "hubspot", "--base-url", hubspot.url,
                  "--token-env", "pat-na1-0000-secret")  # fmt: skip
    assert refused.exit_code == 2
    assert "NAME of an environment variable" in refused.stderr
    bad_map = run("crm", "map", "contacts", "jobtitle", "title", "--mode", "read_write")
    assert bad_map.exit_code == 2
    assert hubspot.prop("contacts", ann, "hs_email_optout") == "true"


def test_R31_a_secret_saved_from_the_command_line_is_encrypted_and_used_by_the_sync(
    fresh_engine: Engine, start_hubspot: Callable[..., HubSpot]
) -> None:
    hubspot = start_hubspot()
    hubspot.contact("ann@acme.com", hs_email_optout=True)
    with fresh_engine.begin() as db:
        World(db, utcnow(), slug="acme-sales")
    runner = CliRunner()
    env = {
        "OPTOUT_DATABASE_URL": fresh_engine.url.render_as_string(hide_password=False),
        "OPTOUT_WORKSPACE": "acme-sales",
        "OPTOUT_ENCRYPTION_KEYS": new_key(),
        "OPTOUT_CRM_ALLOWED_HOSTS": ENV["OPTOUT_CRM_ALLOWED_HOSTS"],
        "COLUMNS": "200",
    }

    def run(*args: str, given: str | None = None) -> Result:
        return runner.invoke(app, list(args), env=env, input=given)

    assert run("crm", "connect", "hubspot", "--base-url", hubspot.url).exit_code == 0
    saved = run("crm", "save-secret", "token", given=f"{HUBSPOT_TOKEN}\n")
    assert saved.exit_code == 0, saved.output
    assert "Saved the hubspot token, encrypted." in saved.stdout
    with fresh_engine.connect() as db:
        raw = repr(db.execute(sa.select(t.crm_secrets)).all())
    assert HUBSPOT_TOKEN not in raw
    assert "gAAAAA" in raw  # a Fernet token

    synced = run("crm", "sync")
    assert synced.exit_code == 0, synced.output
    assert "opted out 1 address(es)" in synced.stdout

    without_keys = runner.invoke(app, ["crm", "sync"], env={**env, "OPTOUT_ENCRYPTION_KEYS": ""})
    assert without_keys.exit_code != 0
    assert "set OPTOUT_ENCRYPTION_KEYS" in without_keys.output
