"""A new admin's first walk, in the browser only, from a fresh workspace: connect HubSpot
(its emulator on loopback) with the opt-out field read and written, sync the people in,
build a persona and an audience, a ruleset and a two-step sequence checked in its
preview, enroll the audience, let the worker send through a real SMTP server, read a
person's explain panel, then bulk-unenroll with the progress bar reaching done: the
follow-ups are never sent (R1, R10, R26, R29, R31).

With OPTOUT_TOUR_SCREENSHOTS=docs/tour the walk also writes the three screenshots of the
README's tour there (the window at 1366 px, not the full page)."""

from __future__ import annotations

import email
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.services.access import accounts
from tests.browser.conftest import App
from tests.browser.page_checks import DESKTOP, check_page, console_errors
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.factories import World
from tests.sending.lost_answers import worker_pass
from tests.sending.smtp_server import Recorder, smtp_server
from tests.web.conftest import serving

TOKEN = "pat-na1-walk-7c2e-token"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpot]:
    # The emulator listens on loopback, which the outbound guard refuses unless named.
    monkeypatch.setenv("OPTOUT_CRM_ALLOWED_HOSTS", "127.0.0.1")
    emulator = HubSpot(token=TOKEN, clock=FakeClock())
    with serving(emulator.app) as url:
        emulator.url = url
        yield emulator


def _tour_shot(app: App, name: str) -> None:
    """One screenshot of the README's tour, when asked for: the window as it is."""
    folder = os.environ.get("OPTOUT_TOUR_SCREENSHOTS")
    if not folder or app.prefix.split("-", 1)[0] != "sqlite":
        return
    target = ROOT / folder
    target.mkdir(parents=True, exist_ok=True)
    app.page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.page.screenshot(path=str(target / f"{name}.png"), full_page=False)


def _received(handler: Recorder) -> list[tuple[str, str]]:
    """(recipient, subject) of every message the SMTP server got, in order."""
    found = []
    for message in handler.received:
        parsed = email.message_from_bytes(message.content, policy=policy.default)
        found.append((message.recipients[0], str(parsed["Subject"])))
    return found


def test_R10_R26_R29_R31_new_admin_walks_from_a_crm_to_a_bulk_unenroll(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
    hubspot: HubSpot,
) -> None:
    acme = hubspot.company("acme.com", "Acme")
    globex = hubspot.company("globex.com", "Globex")
    hubspot.contact("ann@acme.com", company=acme, firstname="Ann", jobtitle="CTO")
    hubspot.contact("bob@acme.com", company=acme, firstname="Bob", jobtitle="Sales Manager")
    hubspot.contact("cat@globex.com", company=globex, firstname="Cat", jobtitle="VP Engineering")
    hubspot.contact(
        "dan@globex.com", company=globex, firstname="Dan", jobtitle="CTO", hs_email_optout=True
    )
    with web_world() as world:  # a fresh install: a workspace and its admin, nothing else
        admin = f"ops-{world.workspace.slug}@example.com"
        accounts.set_member(world.db, workspace_id=world.ws, email=admin, role="admin")
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    # 1. Connect HubSpot, the opt-out field read and written, and sync now.
    app.visit("/", "dashboard")
    page.click("nav.sidebar >> text=CRM")
    page.click("#crm-connections >> text=HubSpot")
    page.fill("#base_url", hubspot.url)
    page.fill("#token", TOKEN)
    page.click("#save-connection")
    expect(page.locator(".notice.ok")).to_contain_text("HubSpot connection saved.")
    page.click("#test-connection")
    expect(page.locator("#test-answer")).to_contain_text("Connected: HubSpot accepted")
    page.fill("#opt-out-contacts-field", "hs_email_optout")
    page.select_option("#opt-out-contacts-mode", "read_write")
    page.click("#save-opt-out-contacts")
    expect(page.locator("#opt-out-contacts legend")).to_contain_text("read and write")
    page.click("#sync-now")
    expect(page.locator(".notice.ok")).to_contain_text("Synced: read 6 records")
    expect(page.locator(".notice.ok")).to_contain_text("opted out 1")
    expect(page.locator("#synced-counts")).to_contain_text("contacts 4")
    expect(page.locator("#synced-counts")).to_contain_text("companies 2")
    check_page(app, "hubspot connected and synced")
    _tour_shot(app, "1-crm-synced")

    app.visit("/people", "people after the sync")
    for address in ("ann@acme.com", "bob@acme.com", "cat@globex.com", "dan@globex.com"):
        expect(page.locator("tbody")).to_contain_text(address)

    # 2. A persona and an audience built on it.
    page.click("nav.sidebar >> text=Personas")
    page.click("text=New persona")
    page.fill("#name", "Technical")
    page.fill("#include", "cto\nengineering")
    page.fill("#exclude", "sales")
    expect(page.locator("#persona-count")).to_contain_text("3 people match now of 4")
    check_page(app, "new persona")
    page.click("#save-persona")
    expect(page.locator(".notice.ok")).to_contain_text("Created Technical.")

    page.click("nav.sidebar >> text=Audiences")
    page.click("text=New audience")
    page.fill("#name", "Technical buyers")
    page.select_option("#persona", "Technical")
    expect(page.locator("#audience-count")).to_contain_text("3 people match now of 4")
    page.click("#save-audience")
    expect(page.locator(".notice.ok")).to_contain_text("Created Technical buyers.")
    expect(page.locator("dl.facts")).to_contain_text("3 people")
    check_page(app, "audience created")

    # 3. A ruleset, then a sequence: email, wait two days, email; previewed for Cat.
    page.click("nav.sidebar >> text=Rulesets")
    page.click("text=New ruleset")
    page.fill("#name", "Default")
    page.click("#save-ruleset")
    expect(page.locator(".notice.ok")).to_contain_text("Created Default.")

    page.click("nav.sidebar >> text=Sequences")
    page.click("text=New sequence")
    page.fill("#name", "Welcome")
    page.select_option("#ruleset", "Default")
    page.select_option("#audience", "Technical buyers")
    page.fill("#from_address", "Sam Seller <sam@acme-sales.com>")
    page.fill("#step-0-first", "Hello {{ person.first_name }}")
    page.fill("#step-0-text", "A note for {{ company.domain }}.")
    page.click("text=+ Wait step")
    page.fill("#step-1-first", "2")
    page.click("text=+ Email step")
    page.fill("#step-2-first", "Following up, {{ person.first_name }}")
    page.fill("#step-2-text", "Any thoughts?")
    page.fill("#preview-email", "cat@globex.com")
    page.locator("#preview-email").dispatch_event("change")
    expect(page.locator("#step-0 .rendered-subject")).to_have_text("Hello Cat")
    expect(page.locator("#step-0 .rendered-text")).to_contain_text("A note for globex.com.")
    expect(page.locator("#step-0 .rendered-text")).to_contain_text("Unsubscribe: ")
    expect(page.locator("#step-2 .rendered-subject")).to_have_text("Following up, Cat")
    check_page(app, "new sequence with its preview")
    page.locator("#step-0").scroll_into_view_if_needed()
    _tour_shot(app, "2-sequence-preview")
    page.click("#save-sequence")
    expect(page.locator(".notice.ok")).to_contain_text("Created Welcome.")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text("wait 2 days")

    # 4. Enroll the audience: Dan opted out in HubSpot and is left out, with the reason.
    # A new sequence enrolls its audience automatically: its members wait for the worker.
    page.click("nav.tabs >> text=Not enrolled")
    expect(page.locator("tbody")).to_contain_text(
        "3 people wait to be enrolled automatically by the worker's next pass"
    )
    page.click("nav.tabs >> a:text-is('Enroll')")
    page.click("button:has-text('Enroll from audience now')")
    expect(page.locator(".notice.ok")).to_contain_text(
        "3 in the audience: 2 enrolled now, 1 left out."
    )
    left_out = page.locator("tbody tr")
    expect(left_out).to_have_count(1)
    expect(left_out).to_contain_text("dan@globex.com")
    expect(left_out).to_contain_text("opted out")
    check_page(app, "not enrolled after enrolling the audience")

    # 5. The worker sends the first emails into a real SMTP server.
    handler = Recorder()
    with smtp_server(handler) as port:
        sent = worker_pass(engine, port, utcnow())
        assert sent.sent == 2
        page.click("nav.tabs >> text=Enrollments")
        enrolled = page.locator("tbody tr")
        expect(enrolled).to_have_count(2)
        expect(enrolled.filter(has_text="ann@acme.com")).to_contain_text("in progress")
        expect(enrolled.filter(has_text="cat@globex.com")).to_contain_text("in progress")
        check_page(app, "enrollments after the first send")

        # 6. Ann's page explains whether she may be emailed, check by check.
        page.click("nav.sidebar >> text=People")
        page.click("tbody >> text=ann@acme.com")
        page.select_option("#explain-sequence", "Welcome")
        verdict = page.locator("#explain .verdict")
        expect(verdict).to_contain_text("may not be enrolled in “Welcome” now")
        expect(verdict.locator("#blocking-rule")).to_contain_text("already in progress in")
        page.select_option("select[name=purpose]", "send")
        expect(verdict).to_contain_text("ALLOWED")
        expect(verdict).to_contain_text("ann@acme.com may be emailed by “Welcome” now")
        expect(page.locator("#explain tbody tr").first).to_contain_text("no spam complaint")
        check_page(app, "ann's explain")

        # 7. Bulk unenroll every enrollment in progress; the bar reaches done.
        page.click("nav.sidebar >> text=Sequences")
        page.click("tbody >> text=Welcome")
        page.click("nav.tabs >> text=Enrollments")
        page.check("#select-all")
        page.check("input[name=scope][value=matching]")
        expect(page.locator("#select-matching")).to_contain_text("(2 in all)")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Unenroll')")
        expect(page.locator("h1")).to_contain_text("Bulk unenroll from Welcome")
        expect(page.locator("#job-state")).to_have_text("Done")
        expect(page.locator("#job-bar")).to_have_attribute("value", "100")
        expect(page.locator("#job-count")).to_contain_text("2 of 2")
        expect(page.locator("#job-summary")).to_contain_text(
            "Unenrolled 2 enrollment(s) and cancelled 2 queued email(s)"
        )
        check_page(app, "bulk unenroll done")
        _tour_shot(app, "3-bulk-unenroll-done")

        # Three days on, the follow-ups are due, but nobody is left to send them to.
        later = worker_pass(engine, port, utcnow() + timedelta(days=3))
        assert later.sent == 0
    assert sorted(_received(handler)) == [
        ("ann@acme.com", "Hello Ann"),
        ("cat@globex.com", "Hello Cat"),
    ]
    page.click("text=Back to the enrollments")
    expect(page.locator("tbody")).to_contain_text("No enrollments with this status.")
    assert errors == [], "console errors"
