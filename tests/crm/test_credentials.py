"""CRM secrets entered here are kept encrypted (OPTOUT_ENCRYPTION_KEYS) and the connectors
sign in with them; secrets named by environment variable keep working (R31, R32)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.config import Settings
from optout.crm import connections, credentials, manage, mapping, sync
from optout.crm.mapping import FieldMapping
from optout.crypto import new_key
from optout.db import tables as t
from optout.errors import ConnectorError, InvalidInput, InvalidMapping
from optout.web.app import create_app
from tests.crm.conftest import ENV, HUBSPOT_TOKEN, SF_SECRET, connect_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.salesforce import Salesforce
from tests.factories import World
from tests.web.conftest import serving

KEYS = (new_key(),)
ALLOWED = {"OPTOUT_CRM_ALLOWED_HOSTS": ENV["OPTOUT_CRM_ALLOWED_HOSTS"]}
APP_SECRET = "hubspot-app-secret-7f3e"


def _raw(db: Connection) -> str:
    """Every value of the connection and secret tables, as the database holds them."""
    rows = [
        *db.execute(sa.select(t.crm_connections)).all(),
        *db.execute(sa.select(t.crm_secrets)).all(),
    ]
    return repr(rows)


def _hubspot(world: World, now: datetime, **secrets: str) -> connections.CrmConnection:
    return manage.connect(
        world.db,
        workspace_id=world.ws,
        kind="hubspot",
        base_url="https://api.hubapi.com",
        settings={},
        secrets=secrets,
        keys=KEYS,
        now=now,
    )


def test_R31_a_saved_crm_token_is_encrypted_in_the_database(world: World, now: datetime) -> None:
    connection = _hubspot(world, now, token=HUBSPOT_TOKEN, webhook_secret=APP_SECRET)

    raw = _raw(world.db)
    assert HUBSPOT_TOKEN not in raw
    assert APP_SECRET not in raw
    assert "test-token" not in raw
    assert credentials.saved_roles(world.db, connection_id=connection.id) == {
        "token",
        "webhook_secret",
    }
    assert credentials.stored(world.db, connection=connection, keys=KEYS) == {
        "token": HUBSPOT_TOKEN,
        "webhook_secret": APP_SECRET,
    }


def test_R31_an_empty_secret_keeps_the_saved_one_and_a_new_one_replaces_it(
    world: World, now: datetime
) -> None:
    connection = _hubspot(world, now, token="pat-na1-first")
    _hubspot(world, now, token="", webhook_secret="")
    assert credentials.stored(world.db, connection=connection, keys=KEYS) == {
        "token": "pat-na1-first"
    }
    _hubspot(world, now, token="pat-na1-second")
    assert credentials.stored(world.db, connection=connection, keys=KEYS) == {
        "token": "pat-na1-second"
    }
    assert "pat-na1-second" not in _raw(world.db)


def test_R34_saving_a_secret_without_encryption_keys_says_what_to_set(
    world: World, now: datetime
) -> None:
    with pytest.raises(InvalidInput, match="OPTOUT_ENCRYPTION_KEYS"):
        manage.connect(
            world.db,
            workspace_id=world.ws,
            kind="hubspot",
            base_url="https://api.hubapi.com",
            settings={},
            secrets={"token": HUBSPOT_TOKEN},
            keys=(),
            now=now,
        )


def test_R32_reading_stored_secrets_without_the_keys_is_a_clear_connector_error(
    world: World, now: datetime
) -> None:
    connection = _hubspot(world, now, token=HUBSPOT_TOKEN)
    with pytest.raises(ConnectorError, match="set OPTOUT_ENCRYPTION_KEYS"):
        credentials.connector(world.db, connection=connection, env={}, keys=())


def test_R31_a_variable_named_later_replaces_the_stored_secret_and_the_other_way(
    world: World, now: datetime
) -> None:
    connection = _hubspot(world, now, token=HUBSPOT_TOKEN)
    connections.connect(
        world.db,
        workspace_id=world.ws,
        kind="hubspot",
        base_url="https://api.hubapi.com",
        secrets={"token": "HUBSPOT_TOKEN"},
        now=now,
    )
    assert credentials.saved_roles(world.db, connection_id=connection.id) == set()
    named = connections.by_id(world.db, connection_id=connection.id)
    assert named.secrets == {"token": "HUBSPOT_TOKEN"}

    _hubspot(world, now, token=HUBSPOT_TOKEN)
    saved = connections.by_id(world.db, connection_id=connection.id)
    assert saved.secrets == {}
    assert credentials.saved_roles(world.db, connection_id=connection.id) == {"token"}


def test_R31_a_bad_mapping_names_the_part_at_fault() -> None:
    cases = {
        FieldMapping("tickets", "x", "title"): "crm_object",
        FieldMapping("contacts", "bad field", "title"): "crm_field",
        FieldMapping("contacts", "jobtitle", "salary"): "our_field",
        FieldMapping("contacts", "jobtitle", "title", "read_write"): "mode",
    }
    for given, where in cases.items():
        with pytest.raises(InvalidMapping) as caught:
            mapping.check("hubspot", given)
        assert caught.value.where == where, given


def test_R32_hubspot_sync_signs_in_with_the_stored_token(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: Callable[..., HubSpot]
) -> None:
    hubspot = start_hubspot()
    hubspot.contact("ann@acme.com", hs_email_optout=True)
    crm = connect_workspace(
        fresh_engine,
        clock,
        kind="hubspot",
        base_url=hubspot.url,
        secrets={},
        settings={"requests_per_10s": None, "search_per_second": None},
    )
    with fresh_engine.begin() as db:
        connection = connections.by_id(db, connection_id=crm.connection_id)
        credentials.save(
            db, connection=connection, values={"token": HUBSPOT_TOKEN}, keys=KEYS, now=utcnow()
        )

    report = manage.sync_now(
        fresh_engine, workspace_id=crm.ws, kind="hubspot", env=ALLOWED, keys=KEYS
    )

    assert report.status == "ok", report.error
    assert crm.opted_out("ann@acme.com")
    # The scheduled run reads the keys from its environment.
    [scheduled] = sync.run_once(fresh_engine, env={**ALLOWED, "OPTOUT_ENCRYPTION_KEYS": KEYS[0]})
    assert scheduled.status == "ok", scheduled.error


def test_R32_salesforce_test_call_uses_the_stored_client_secret(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: Callable[..., Salesforce]
) -> None:
    salesforce = start_salesforce()
    crm = connect_workspace(
        fresh_engine,
        clock,
        kind="salesforce",
        base_url=salesforce.base_url,
        secrets={},
        settings={"auth": "client_credentials", "client_id": salesforce.client_id},
    )
    before = manage.test(
        fresh_engine, workspace_id=crm.ws, kind="salesforce", env=ALLOWED, keys=KEYS
    )
    assert not before.ok
    with fresh_engine.begin() as db:
        connection = connections.by_id(db, connection_id=crm.connection_id)
        credentials.save(
            db, connection=connection, values={"client_secret": SF_SECRET}, keys=KEYS, now=utcnow()
        )

    after = manage.test(
        fresh_engine, workspace_id=crm.ws, kind="salesforce", env=ALLOWED, keys=KEYS
    )

    assert after.ok, after.message
    assert "Salesforce accepted" in after.message


def test_R32_a_hubspot_webhook_is_checked_against_the_stored_app_secret(
    fresh_engine: Engine,
    clock: FakeClock,
    start_hubspot: Callable[..., HubSpot],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTOUT_CRM_ALLOWED_HOSTS", ALLOWED["OPTOUT_CRM_ALLOWED_HOSTS"])
    hubspot = start_hubspot()
    ann = hubspot.contact("ann@acme.com")
    crm = connect_workspace(
        fresh_engine,
        clock,
        kind="hubspot",
        base_url=hubspot.url,
        secrets={},
        settings={"requests_per_10s": None, "search_per_second": None},
    )
    with fresh_engine.begin() as db:
        connection = connections.by_id(db, connection_id=crm.connection_id)
        credentials.save(
            db,
            connection=connection,
            values={"token": HUBSPOT_TOKEN, "webhook_secret": APP_SECRET},
            keys=KEYS,
            now=utcnow(),
        )
    hubspot.update("contacts", ann, hs_email_optout=True)
    event = hubspot.event("contacts", ann, propertyName="hs_email_optout", propertyValue="true")
    settings = Settings(
        database_url="unused://", secret_keys=("crm-test-key-0123456789",), encryption_keys=KEYS
    )
    with serving(create_app(settings, fresh_engine)) as base:
        url = f"{base}/crm/webhooks/hubspot/{crm.connection_id}"
        forged = hubspot.send_webhook(url, [event], secret="not-the-app-secret")
        signed = hubspot.send_webhook(url, [event], secret=APP_SECRET)

    assert forged.status_code == 401
    assert signed.status_code == 200, signed.text
    assert crm.opted_out("ann@acme.com")


def test_R32_a_salesforce_outbound_message_needs_the_webhook_secret_once_one_is_made(
    fresh_engine: Engine,
    clock: FakeClock,
    start_salesforce: Callable[..., Salesforce],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTOUT_CRM_ALLOWED_HOSTS", ALLOWED["OPTOUT_CRM_ALLOWED_HOSTS"])
    salesforce = start_salesforce()
    ann = salesforce.create("Contact", Email="ann@acme.com", HasOptedOutOfEmail=True)
    crm = connect_workspace(
        fresh_engine,
        clock,
        kind="salesforce",
        base_url=salesforce.base_url,
        secrets={},
        settings={"auth": "client_credentials", "client_id": salesforce.client_id},
    )
    with fresh_engine.begin() as db:
        connection = connections.by_id(db, connection_id=crm.connection_id)
        credentials.save(
            db, connection=connection, values={"client_secret": SF_SECRET}, keys=KEYS, now=utcnow()
        )
        secret = credentials.new_webhook_secret(db, connection=connection, keys=KEYS, now=utcnow())
    assert secret not in _raw_of(fresh_engine)
    message = salesforce.outbound_message([("Contact", ann)])
    settings = Settings(
        database_url="unused://", secret_keys=("crm-test-key-0123456789",), encryption_keys=KEYS
    )
    with serving(create_app(settings, fresh_engine)) as base:
        url = f"{base}/crm/webhooks/salesforce/{crm.connection_id}"
        bare = salesforce.send_outbound(url, message)
        wrong = salesforce.send_outbound(f"{url}?key=not-it", message)
        assert not crm.opted_out("ann@acme.com")
        keyed = salesforce.send_outbound(f"{url}?key={secret}", message)

    assert (bare.status_code, wrong.status_code) == (403, 403)
    assert keyed.status_code == 200, keyed.text
    assert crm.opted_out("ann@acme.com")


def _raw_of(engine: Engine) -> str:
    with engine.connect() as db:
        return _raw(db)
