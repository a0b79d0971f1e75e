"""CRM connections made in the browser against the HubSpot and Salesforce emulators:
connect (the secret saved encrypted and never shown again), test the connection, choose
the master opt-out field and its mode, sync now and see the counts, and a contact opted
out in the CRM is opted out here (R31, R32)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.services.directory import people
from tests.browser.conftest import App
from tests.browser.page_checks import DESKTOP, check_widths, console_errors
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.salesforce import Salesforce
from tests.factories import World
from tests.web.conftest import serving

HUBSPOT_TOKEN = "pat-na1-browser-4b1d-token"
APP_SECRET = "hubspot-app-secret-browser"
SF_SECRET = "sf-client-secret-browser"


@pytest.fixture(autouse=True)
def _emulators_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulators listen on loopback, which the outbound guard refuses unless named."""
    monkeypatch.setenv("OPTOUT_CRM_ALLOWED_HOSTS", "127.0.0.1")


@pytest.fixture
def hubspot() -> Iterator[HubSpot]:
    emulator = HubSpot(token=HUBSPOT_TOKEN, clock=FakeClock())
    with serving(emulator.app) as url:
        emulator.url = url
        yield emulator


@pytest.fixture
def salesforce() -> Iterator[Salesforce]:
    emulator = Salesforce(client_secret=SF_SECRET, clock=FakeClock())
    with serving(emulator.app) as url:
        emulator.base_url = emulator.url = url
        yield emulator


def _admin_world(web_world: Callable[[], AbstractContextManager[World]]) -> World:
    with web_world() as world:
        admin = f"ops-{world.workspace.slug}@example.com"
        accounts.set_member(world.db, workspace_id=world.ws, email=admin, role="admin")
    return world


def _stored(engine: Engine, ws: int) -> tuple[int, str]:
    """How many secrets the workspace's connections keep, and every value of their rows
    (connection and secrets) as the database holds them."""
    c, s = t.crm_connections, t.crm_secrets
    with engine.connect() as db:
        rows = db.execute(
            sa.select(c, s).join(s, s.c.connection_id == c.c.id).where(c.c.workspace_id == ws)
        ).all()
    return len(rows), repr(rows)


def test_R31_R32_hubspot_connected_mapped_and_synced_in_the_browser(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
    hubspot: HubSpot,
) -> None:
    acme = hubspot.company("acme.com", "Acme")
    ann = hubspot.contact("ann@acme.com", company=acme, firstname="Ann")
    hubspot.contact("bob@acme.com", company=acme, firstname="Bob")
    world = _admin_world(web_world)
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    app.visit("/", "dashboard")
    page.click("nav.sidebar >> text=CRM")
    expect(page.locator("#crm-connections tr").filter(has_text="HubSpot")).to_contain_text(
        "not connected"
    )
    page.click("#crm-connections >> text=HubSpot")
    expect(page.locator("#token-state")).to_contain_text("Not set.")
    page.fill("#base_url", hubspot.url)
    page.fill("#token", HUBSPOT_TOKEN)
    page.fill("#webhook_secret", APP_SECRET)
    check_widths(app, "connect hubspot")
    page.click("#save-connection")
    expect(page.locator(".notice.ok")).to_contain_text("HubSpot connection saved.")
    # Saved and never shown again: not in the page, not in clear in the database.
    expect(page.locator("#token-state")).to_contain_text("saved")
    expect(page.locator("#webhook_secret-state")).to_contain_text("saved")
    expect(page.locator("#token")).to_have_value("")
    assert HUBSPOT_TOKEN not in page.content()
    assert APP_SECRET not in page.content()
    count, raw = _stored(engine, world.ws)
    assert count == 2
    assert HUBSPOT_TOKEN not in raw
    assert APP_SECRET not in raw
    expect(page.locator("#webhook-url")).to_contain_text("/crm/webhooks/hubspot/")
    expect(page.locator("#webhook-panel")).to_contain_text("client secret: saved")

    page.click("#test-connection")
    expect(page.locator("#test-answer")).to_contain_text(
        "Connected: HubSpot accepted the credentials"
    )
    check_widths(app, "hubspot tested")

    # Our field is picked by its label; a pick under another object than the one chosen is
    # told at the picker, and the form keeps what was typed and picked.
    page.select_option("#map-object", "contacts")
    page.fill("#map-crm-field", "jobtitle")
    page.select_option("#map-our-field", label="Opportunity stage")
    page.click("#save-mapping")
    error = page.locator("#map-our-field + .field-error")
    expect(error).to_contain_text("“Opportunity stage” is filled from deals, not from contacts")
    expect(page.locator("#map-our-field")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#map-crm-field")).to_have_value("jobtitle")
    expect(page.locator("#map-our-field")).to_have_value("deals|stage")
    page.select_option("#map-our-field", "contacts|title")
    page.click("#save-mapping")
    expect(page.locator(".notice.ok")).to_contain_text(
        "HubSpot contacts field jobtitle now feeds “Job title”."
    )

    # The master opt-out field, read and written.
    expect(page.locator("#opt-out-contacts legend")).to_contain_text("now hs_email_optout, read")
    page.fill("#opt-out-contacts-field", "hs_email_optout")
    page.select_option("#opt-out-contacts-mode", "read_write")
    page.click("#save-opt-out-contacts")
    expect(page.locator(".notice.ok")).to_contain_text(
        "HubSpot contacts field hs_email_optout now feeds “Opted out of email”; opt-outs "
        "made here are written back to it."
    )
    expect(page.locator("#opt-out-contacts legend")).to_contain_text("read and write")
    expect(page.locator("#mappings tr").filter(has_text="hs_email_optout")).to_contain_text(
        "read and write"
    )

    # Ann opts out in HubSpot; a sync now brings everyone in and opts her out here.
    hubspot.update("contacts", ann, hs_email_optout=True)
    expect(page.locator("#last-sync")).to_contain_text("never")
    page.click("#sync-now")
    expect(page.locator(".notice.ok")).to_contain_text("Synced: read 3 records")
    expect(page.locator(".notice.ok")).to_contain_text("opted out 1")
    expect(page.locator("#last-sync")).to_contain_text("ok")
    expect(page.locator("#synced-counts")).to_contain_text("contacts 2")
    expect(page.locator("#synced-counts")).to_contain_text("companies 1")
    expect(page.locator("#pending-writebacks")).to_have_text("0")
    check_widths(app, "hubspot synced")

    with engine.connect() as db:
        ann_id = people.id_by_email(db, workspace_id=world.ws, email="ann@acme.com")
        bob_id = people.id_by_email(db, workspace_id=world.ws, email="bob@acme.com")
    app.visit(f"/people/{ann_id}", "ann opted out")
    expect(page.locator(".badge.opted_out").first).to_contain_text("opted out")
    app.visit(f"/people/{bob_id}", "bob not opted out")
    expect(page.locator(".badge.opted_out")).to_have_count(0)

    app.visit("/crm", "crm list")
    expect(page.locator("#crm-connections tr").filter(has_text="HubSpot")).to_contain_text("ok")
    assert not errors, errors


def test_R31_salesforce_connected_and_tested_in_the_browser(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
    salesforce: Salesforce,
) -> None:
    world = _admin_world(web_world)
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    app.visit("/crm/salesforce", "connect salesforce")
    page.fill("#base_url", salesforce.base_url)
    page.select_option("#auth", "client_credentials")
    page.fill("#client_id", salesforce.client_id)
    page.fill("#client_secret", "not-the-secret")
    page.click("#save-connection")
    expect(page.locator("#client_secret-state")).to_contain_text("saved")

    # A wrong secret: the test says so.
    page.click("#test-connection")
    expect(page.locator("#test-answer")).to_contain_text("Salesforce did not accept")

    page.fill("#client_secret", SF_SECRET)
    page.click("#save-connection")
    expect(page.locator(".notice.ok")).to_contain_text("Saved, encrypted: client secret.")
    expect(page.locator("#client_id")).to_have_value(salesforce.client_id)
    page.click("#test-connection")
    expect(page.locator("#test-answer")).to_contain_text(
        "Connected: Salesforce accepted the credentials and let optout read Lead"
    )
    expect(page.locator("#opt-out-Lead legend")).to_contain_text("now HasOptedOutOfEmail, read")
    expect(page.locator("#opt-out-Contact legend")).to_contain_text("now HasOptedOutOfEmail")
    check_widths(app, "salesforce tested")
    assert SF_SECRET not in page.content()

    # The webhook address carries a secret made here, shown once.
    expect(page.locator("#webhook-secret-state")).to_contain_text("No webhook secret yet")
    page.click("#new-webhook-secret")
    shown = page.locator("#new-webhook-url code")
    expect(shown).to_contain_text("/crm/webhooks/salesforce/")
    address = shown.inner_text()
    key = address.split("?key=", 1)[1]
    check_widths(app, "salesforce webhook address")
    ann = salesforce.create("Contact", Email="ann@acme.com", HasOptedOutOfEmail=True)
    pushed = address.replace("http://127.0.0.1:8000", app.base)  # the server's public address
    message = salesforce.outbound_message([("Contact", ann)])
    assert salesforce.send_outbound(pushed.split("?", 1)[0], message).status_code == 403
    assert salesforce.send_outbound(pushed, message).status_code == 200
    app.visit("/crm/salesforce", "salesforce webhook secret saved")
    expect(page.locator("#webhook-secret-state")).to_contain_text("saved")
    assert key not in page.content()

    count, raw = _stored(engine, world.ws)
    assert count == 2
    assert SF_SECRET not in raw
    assert key not in raw
    assert not errors, errors
