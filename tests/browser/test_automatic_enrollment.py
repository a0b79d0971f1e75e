"""A sequence that enrolls by itself, in a browser (R41, R30, R9): switched on from its
page, it enrolls three people imported from a CSV file with nobody pressing a button, the
worker passing beside the server; an exclusion naming one of them unenrolls her and lists
her as not enrolled with the rule; once the rule is gone and the clock is past the
ruleset's cooldown, she is enrolled again."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.services.sequences.definitions import Step
from tests.browser.conftest import App
from tests.browser.page_checks import check_page
from tests.factories import World
from tests.sending.lost_answers import worker_pass
from tests.sending.smtp_server import Recorder, smtp_server

LEADS = """Email,First name,Job title,Company domain
ana@northwind.com,Ana,Head of People,northwind.com
ben@contoso.com,Ben,People Partner,contoso.com
cleo@fabrikam.com,Cleo,VP People,fabrikam.com
"""
COOLDOWN_DAYS = 3
# Two emails a week apart: everyone enrolled is still in the sequence when Ben is excluded.
STEPS = (
    Step(kind="email", subject="Hello {{ person.first_name }}", body_text="Hi there"),
    Step(kind="wait", wait_seconds=7 * 86400),
    Step(kind="email", subject="", body_text="Following up."),
)
ACTIVE = ("not_started", "in_progress")


def _statuses(engine: Engine, sequence_id: int) -> dict[str, list[str]]:
    """Each person's enrollments in the sequence, oldest first, by address."""
    e, p = t.enrollments, t.people
    with engine.connect() as db:
        rows = db.execute(
            sa.select(p.c.email, e.c.status)
            .join(p, p.c.id == e.c.person_id)
            .where(e.c.sequence_id == sequence_id)
            .order_by(e.c.id)
        ).all()
    found: dict[str, list[str]] = {}
    for email, status in rows:
        found.setdefault(email, []).append(status)
    return found


def _passes(engine: Engine, port: int, at: datetime, *, count: int = 2) -> None:
    """The worker, as `optout serve` runs it beside the server: a pass every few seconds."""
    for n in range(count):
        worker_pass(engine, port, at + timedelta(seconds=5 * n))


def test_R41_a_sequence_enrolls_imported_people_by_itself_never_past_an_exclusion(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        world.person("dora@wingtip.com", company="wingtip.com", title="Controller")
        world.audience("People teams", filter='person.title contains "people"')
        world.ruleset("Nurture", reenroll_cooldown_days=COOLDOWN_DAYS)
        sequence_id = world.sequence(
            "People teams intro", ruleset="Nurture", audience="People teams", steps=STEPS
        )
    app = open_app(world)
    page = app.page
    app.sign_in()

    # 1. Switch the sequence to enroll automatically, on its page.
    app.visit(f"/sequences/{sequence_id}", "sequence enrolls by hand")
    panel = page.locator("#automatic-enrollment")
    expect(panel).to_contain_text("Off")
    page.check("#enroll-automatically")
    page.click("#save-automatic-enrollment")
    expect(page.locator(".notice.ok")).to_contain_text(
        "People teams intro now enrolls automatically"
    )
    expect(page.locator("#automatic-enrollment-state")).to_contain_text("On")
    expect(page.locator("#enrolled-automatically")).to_contain_text(
        "0 enrolled automatically in the last day"
    )
    check_page(app, "sequence enrolls automatically")

    # 2. Import three people who match its audience, as a user would.
    app.visit("/imports", "imports")
    page.set_input_files(
        "#file", files=[{"name": "leads.csv", "mimeType": "text/csv", "buffer": LEADS.encode()}]
    )
    page.check("input[name=kind][value=people]")
    page.click("button:has-text('Upload and map columns')")
    expect(page.locator("h1")).to_contain_text("Map the columns of leads.csv")
    page.click("button:has-text('Import 3 row(s)')")
    expect(page.locator("#job-state")).to_have_text("Done")
    expect(page.locator("#job-summary")).to_contain_text("3 created")

    # 3. Nobody presses a button: the worker's passes enroll them.
    with smtp_server(Recorder()) as port:
        _passes(engine, port, utcnow())
        enrolled = _statuses(engine, sequence_id)
        assert sorted(enrolled) == ["ana@northwind.com", "ben@contoso.com", "cleo@fabrikam.com"]
        assert all(len(s) == 1 and s[0] in ACTIVE for s in enrolled.values())
        app.visit(f"/sequences/{sequence_id}", "three enrolled automatically")
        expect(page.locator("#enrolled-automatically")).to_contain_text(
            "3 enrolled automatically in the last day"
        )
        page.click("nav.tabs >> a:text-is('Enrollments')")
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(3)
        for email in enrolled:
            expect(page.locator("tbody")).to_contain_text(email)

        # 4. An exclusion names Ben; saving it unenrolls him.
        app.visit("/exclusions/new", "new exclusion")
        page.fill("#name", "Ben asked for no outreach")
        page.check("input[name=level][value=people]")
        page.fill("#filter", 'person.email in ("ben@contoso.com")')
        page.check("input[name=exclude_from_sequences]")
        page.check("input[name=unenroll_existing_on_save]")
        page.click("text=Create exclusion")
        page.wait_for_load_state("networkidle")
        anyway = page.locator("text=Save anyway")
        if anyway.count():
            anyway.click()
            expect(page.locator("#job-state")).to_have_text("Done")
        _passes(engine, port, utcnow())
        assert _statuses(engine, sequence_id)["ben@contoso.com"] == ["unenrolled"]

        app.visit(f"/sequences/{sequence_id}/not-enrolled", "ben not enrolled, with the rule")
        row = page.locator("tbody tr", has_text="ben@contoso.com")
        expect(row).to_contain_text("Ben asked for no outreach")
        expect(page.locator("tbody tr")).to_have_count(1)
        check_page(app, "not enrolled with the rule")

        # Explain says the same for Ben.
        row.locator("a:has-text('ben@contoso.com')").click()
        page.wait_for_load_state("networkidle")
        expect(page.locator("#automatic-outlook")).to_contain_text(
            "ben@contoso.com will not be enrolled automatically: excluded by "
            "'Ben asked for no outreach'"
        )

        # 5. The exclusion goes; the cooldown still keeps Ben out, for the few days set.
        exclusion_id = _exclusion_id(engine, world, "Ben asked for no outreach")
        app.visit(f"/exclusions/{exclusion_id}/delete", "delete the exclusion")
        page.click("button:has-text('Delete Ben asked for no outreach')")
        page.wait_for_load_state("networkidle")
        _passes(engine, port, utcnow())
        assert _statuses(engine, sequence_id)["ben@contoso.com"] == ["unenrolled"]
        app.visit(f"/sequences/{sequence_id}/not-enrolled", "ben in cooldown")
        expect(page.locator("tbody tr", has_text="ben@contoso.com")).to_contain_text(
            "in re-enrollment cooldown"
        )

        # The clock moves past the cooldown: the worker enrolls him again by itself.
        _passes(engine, port, utcnow() + timedelta(days=COOLDOWN_DAYS, hours=1))
    ended, again = _statuses(engine, sequence_id)["ben@contoso.com"]
    assert (ended, again in ACTIVE) == ("unenrolled", True)
    app.visit(f"/sequences/{sequence_id}/not-enrolled", "nobody kept out")
    expect(page.locator("tbody")).to_contain_text("Nobody in the audience is kept out right now.")


def _exclusion_id(engine: Engine, world: World, name: str) -> int:
    x = t.exclusions
    with engine.connect() as db:
        found = db.scalar(sa.select(x.c.id).where(x.c.workspace_id == world.ws, x.c.name == name))
    assert found is not None
    return int(found)
