"""Sending like a sales team, in a browser: two mailboxes with a daily limit and a gap,
people imported across time zones (a zone column, else their country's one zone), a
two-email sequence with business hours, sent from both mailboxes to its audience. The
worker then sends through a real SMTP server on loopback while the clock moves through
two working days; what the server received shows every email inside its recipient's
hours, no mailbox over its limit in its own day nor closer than its gap, and each
follow-up threaded under its first email (R37, R38, R39).

With OPTOUT_TOUR_SCREENSHOTS=docs/tour the walk also writes the README tour's
screenshots of a sequence's sending hours and of its mailboxes there."""

from __future__ import annotations

import email
import itertools
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.services.access import accounts
from tests.browser.conftest import App
from tests.browser.page_checks import DESKTOP, check_page, console_errors
from tests.factories import World
from tests.sending.lost_answers import worker_pass
from tests.sending.smtp_server import Recorder, smtp_server

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 3  # emails a day, per mailbox
GAP = timedelta(minutes=30)  # at least, between two sends of one mailbox
STEP = timedelta(minutes=10)  # the clock's move between two worker passes
MAILBOXES = {"ann@acme-sales.com": "Europe/Berlin", "bob@acme-sales.com": "America/New_York"}
SUBJECT = "Quick question, {{ person.first_name }}"
PEOPLE = """Email,First name,Title,Time zone,Country
kai@nordhafen.de,Kai,Head of Logistics,Europe/Berlin,
lea@alpenbau.de,Lea,Head of Procurement,,Germany
max@brooklynbrew.com,Max,Head of Operations,America/New_York,
nia@lagosfin.ng,Nia,Head of Finance,,Nigeria
raj@punesoft.in,Raj,Head of Engineering,,India
sue@harbourco.com.au,Sue,Head of Sales,Australia/Sydney,
tom@osakatech.jp,Tom,Head of IT,,Japan
zoe@austinlabs.com,Zoe,Head of Growth,,United States
"""
# Each person's zone: the one given, else their country's only zone; the United States
# keeps several clocks, so Zoe's hours are read in her mailbox's zone.
ZONES = {
    "kai@nordhafen.de": "Europe/Berlin",
    "lea@alpenbau.de": "Europe/Berlin",
    "max@brooklynbrew.com": "America/New_York",
    "nia@lagosfin.ng": "Africa/Lagos",
    "raj@punesoft.in": "Asia/Kolkata",
    "sue@harbourco.com.au": "Australia/Sydney",
    "tom@osakatech.jp": "Asia/Tokyo",
    "zoe@austinlabs.com": None,
}


@dataclass(frozen=True)
class Received:
    to: str
    sender: str
    at: datetime  # aware, from the Date header: when the worker sent it
    subject: str
    message_id: str
    in_reply_to: str | None
    references: str | None


def _received(handler: Recorder) -> list[Received]:
    found = []
    for each in handler.received:
        message = email.message_from_bytes(each.content, policy=policy.default)
        found.append(
            Received(
                to=each.recipients[0],
                sender=parseaddr(str(message["From"]))[1],
                at=parsedate_to_datetime(str(message["Date"])),
                subject=str(message["Subject"]),
                message_id=str(message["Message-ID"]),
                in_reply_to=message["In-Reply-To"] and str(message["In-Reply-To"]),
                references=message["References"] and str(message["References"]),
            )
        )
    return found


def _tour_shot(app: App, name: str) -> None:
    """One screenshot of the README's tour, when asked for: the window as it is."""
    folder = os.environ.get("OPTOUT_TOUR_SCREENSHOTS")
    if not folder or app.prefix.split("-", 1)[0] != "sqlite":
        return
    target = ROOT / folder
    target.mkdir(parents=True, exist_ok=True)
    app.page.screenshot(path=str(target / f"{name}.png"), full_page=False)


def _next_monday(moment: datetime) -> datetime:
    """Midnight UTC of the first Monday after `moment` (naive UTC)."""
    day = moment.date() + timedelta(days=7 - moment.weekday())
    return datetime(day.year, day.month, day.day)


def _statuses(engine: Engine, workspace_id: int) -> dict[str, int]:
    o = t.outbound_emails
    with engine.connect() as db:
        rows = db.execute(
            sa.select(o.c.status, sa.func.count())
            .where(o.c.workspace_id == workspace_id)
            .group_by(o.c.status)
        ).all()
    return {status: int(count) for status, count in rows}


def _queued_first_emails(engine: Engine, workspace_id: int) -> set[str]:
    """The people whose first email is still queued."""
    o, p, st = t.outbound_emails, t.people, t.sequence_steps
    with engine.connect() as db:
        return set(
            db.scalars(
                sa.select(p.c.email)
                .join(o, o.c.person_id == p.c.id)
                .join(st, st.c.id == o.c.step_id)
                .where(o.c.workspace_id == workspace_id, o.c.status == "queued", st.c.position == 0)
            )
        )


def _add_mailbox(app: App, address: str, name: str, zone: str) -> None:
    page = app.page
    form = page.locator("form[action='/mailboxes/new']")
    form.locator("input[name=address]").fill(address)
    form.locator("input[name=display_name]").fill(name)
    form.locator("input[name=daily_limit]").fill(str(LIMIT))
    form.locator("input[name=gap]").fill(str(int(GAP.total_seconds())))
    form.locator("input[name=time_zone]").fill(zone)
    form.locator("button[type=submit]").click()
    expect(page.locator(".notice.ok")).to_contain_text(f"Added {address}.")
    row = page.locator(f"tr[data-mailbox='{address}']")
    expect(row).to_contain_text(f"0 of {LIMIT}")
    expect(row).to_contain_text(f"{int(GAP.total_seconds())} s")
    expect(row).to_contain_text(zone)


def test_R37_R38_R39_two_mailboxes_send_a_sequence_across_time_zones_over_two_days(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        admin = f"ops-{world.workspace.slug}@example.com"
        accounts.set_member(world.db, workspace_id=world.ws, email=admin, role="admin")
        world.ruleset()
        world.audience("Department heads", filter='person.title contains "head"')
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    # 1. Two mailboxes, each with its limit, gap and time zone.
    page.click("nav.sidebar >> text=Mailboxes")
    _add_mailbox(app, "ann@acme-sales.com", "Ann Lund", "Europe/Berlin")
    _add_mailbox(app, "bob@acme-sales.com", "Bob Reyes", "America/New_York")
    check_page(app, "two mailboxes")

    # 2. People across time zones: a zone column, else the country.
    app.visit("/imports", "imports")
    page.set_input_files(
        "#file",
        files=[{"name": "heads.csv", "mimeType": "text/csv", "buffer": PEOPLE.encode()}],
    )
    page.check("input[name=kind][value=people]")
    page.click("button:has-text('Upload and map columns')")
    expect(page.locator("h1")).to_contain_text("Map the columns of heads.csv")
    page.select_option("select[name=map_3]", "time_zone")
    page.select_option("select[name=map_4]", "country")
    page.click("button:has-text('Import 8 row(s)')")
    expect(page.locator("#job-state")).to_have_text("Done")
    expect(page.locator("#job-summary")).to_contain_text("Imported: 8 row(s) read, 8 created")

    # 3. A sequence: an email, one sending day, a follow-up in the same thread; sent on
    # weekdays from 09:00 to 17:00 in each recipient's zone.
    page.click("nav.sidebar >> text=Sequences")
    page.click("text=New sequence")
    page.fill("#name", "Heads outreach")
    page.select_option("#ruleset", "Default")
    page.select_option("#audience", "Department heads")
    page.fill("#from_address", "Ann Lund <ann@acme-sales.com>")
    for day in ("sat", "sun"):
        page.uncheck(f"#send-day-{day}")
    for day in ("mon", "tue", "wed", "thu", "fri"):
        page.check(f"#send-day-{day}")
    page.fill("#send_start", "09:00")
    page.fill("#send_end", "17:00")
    page.check("#business_day_waits")
    page.fill("#step-0-first", SUBJECT)
    page.fill("#step-0-text", "A short note about {{ person.title | lower }}.")
    page.click("text=+ Wait step")
    page.fill("#step-1-first", "1")
    page.click("text=+ Email step")
    page.fill("#step-2-text", "Following up on my note.")
    page.fill("#preview-email", "kai@nordhafen.de")
    page.locator("#preview-email").dispatch_event("change")
    expect(page.locator("#step-0 .rendered-subject")).to_have_text("Quick question, Kai")
    expect(page.locator("#step-2 .rendered-subject")).to_have_text("Re: Quick question, Kai")
    check_page(app, "sequence with sending hours")
    page.locator("#schedule").scroll_into_view_if_needed()
    _tour_shot(app, "4-sending-hours")
    page.click("#save-sequence")
    expect(page.locator(".notice.ok")).to_contain_text("Created Heads outreach.")

    # 4. It sends from both mailboxes.
    page.click("nav.tabs >> text=Mailboxes")
    expect(page.locator("#sequence-mailboxes input[value='ann@acme-sales.com']")).to_be_checked()
    page.check("#sequence-mailboxes input[value='bob@acme-sales.com']")
    page.click("#save-mailboxes")
    expect(page.locator(".notice.ok")).to_contain_text(
        "New enrollments send from ann@acme-sales.com, bob@acme-sales.com"
    )
    expect(page.locator(".page-head")).to_contain_text(
        "from ann@acme-sales.com, bob@acme-sales.com"
    )
    check_page(app, "sequence sends from two mailboxes")
    _tour_shot(app, "5-sequence-mailboxes")

    # 5. Enroll the audience.
    page.click("nav.tabs >> a:text-is('Enroll')")
    page.click("button:has-text('Enroll from audience now')")
    expect(page.locator(".notice.ok")).to_contain_text(
        "8 in the audience: 8 enrolled now, 0 left out."
    )

    # 6. The clock moves through Monday and Tuesday (UTC) of next week, the worker
    # passing every ten minutes and sending through a real SMTP server.
    handler = Recorder()
    start = _next_monday(utcnow())
    with smtp_server(handler) as port:
        moment = start
        while moment < start + timedelta(days=2):
            worker_pass(engine, port, moment)
            moment += STEP
    received = _received(handler)

    # Every email went out in its recipient's hours: Monday to Friday, 09:00 to 17:00 in
    # their zone (Zoe's: her mailbox's).
    assert len(received) > 2 * LIMIT, "both mailboxes sent, on both days"
    for r in received:
        zone = ZONES[r.to] or MAILBOXES[r.sender]
        wall = r.at.astimezone(ZoneInfo(zone))
        assert wall.weekday() < 5, (r.to, zone, wall)
        assert 9 <= wall.hour < 17, (r.to, zone, wall)

    # No mailbox sent more than its limit in one of its own days, nor closer than its gap;
    # the limit held them back (the rest wait, in the queue, not failed).
    per_day: dict[tuple[str, object], int] = {}
    for r in received:
        day = r.at.astimezone(ZoneInfo(MAILBOXES[r.sender])).date()
        per_day[(r.sender, day)] = per_day.get((r.sender, day), 0) + 1
    assert max(per_day.values()) == LIMIT, per_day
    assert {sender for sender, _ in per_day} == set(MAILBOXES)
    for sender in MAILBOXES:
        times = sorted(r.at for r in received if r.sender == sender)
        closest = min(b - a for a, b in itertools.pairwise(times))
        assert closest >= GAP, (sender, closest)
    statuses = _statuses(engine, world.ws)
    assert set(statuses) == {"sent", "queued"}, statuses
    assert statuses["sent"] == len(received)
    # Whoever got nothing yet waits with their first email queued, in its place.
    waiting = _queued_first_emails(engine, world.ws)
    assert waiting, "the limits held some emails back"
    assert {r.to for r in received} | waiting == set(ZONES)

    # Each person's emails come from one mailbox; a follow-up answers the first email.
    by_person = {
        to: sorted((r for r in received if r.to == to), key=lambda r: r.at)
        for to in set(ZONES) - waiting
    }
    follow_ups = 0
    for to, emails in by_person.items():
        first, *later = emails
        name = to.split("@")[0].title()
        assert first.subject == f"Quick question, {name}"
        assert first.in_reply_to is None
        assert first.references is None
        assert {r.sender for r in emails} == {first.sender}, to
        for follow_up in later:
            follow_ups += 1
            assert follow_up.subject == f"Re: Quick question, {name}"
            assert follow_up.in_reply_to == first.message_id
            assert follow_up.references == first.message_id
            assert follow_up.at - first.at >= timedelta(hours=23), (to, first.at, follow_up.at)
    assert follow_ups >= 2, "follow-ups were sent on the second day"

    app.visit("/mailboxes", "mailboxes after two days")
    for address in MAILBOXES:
        expect(page.locator(f"tr[data-mailbox='{address}']")).to_contain_text("Heads outreach")
    assert errors == [], "console errors"
