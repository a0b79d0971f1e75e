"""The Enrollments tab in a browser: select all, then every enrollment matching the
filter, unenrolled as a background job with a progress bar (R10)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services.enrollments import enrolling
from tests.browser.conftest import App
from tests.factories import World

PEOPLE = 130  # more than one page of the tab (100 rows)


def test_R10_bulk_unenroll_everything_matching_the_status_filter(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        sequence_id = world.sequence("Outbound")
        ids = [world.person(f"p{i:03d}@example{i % 7}.com") for i in range(PEOPLE)]
        world.enroll(sequence_id, ids)
        other = world.sequence("Other")
        world.enroll(other, ids[:5])
    app = open_app(world)
    page = app.page
    app.sign_in()

    app.visit(f"/sequences/{sequence_id}/enrollments", "enrollments tab")
    expect(page.locator("tbody tr")).to_have_count(100)
    unenroll = page.locator("button:has-text('Unenroll')")
    expect(unenroll).to_be_disabled()
    page.check("#select-all")
    expect(unenroll).to_contain_text("Unenroll 100 selected")
    matching = page.locator("#select-matching")
    expect(matching).to_be_visible()
    page.check("input[name=scope][value=matching]")
    expect(unenroll).to_contain_text(f"Unenroll {PEOPLE} selected")
    app.shot("all matching selected")
    page.once("dialog", lambda dialog: dialog.accept())
    unenroll.click()
    # It runs as a background job: its page polls the progress until the summary.
    expect(page.locator("h1")).to_contain_text("Bulk unenroll from Outbound")
    expect(page.locator("#job-state")).to_have_text("Done")
    expect(page.locator("#job-bar")).to_have_attribute("value", "100")
    expect(page.locator("#job-count")).to_contain_text(f"{PEOPLE} of {PEOPLE}")
    expect(page.locator("#job-summary")).to_contain_text(
        f"Unenrolled {PEOPLE} enrollment(s) and cancelled {PEOPLE} queued email(s)"
    )
    app.shot("bulk unenroll done")
    page.click("text=Back to the enrollments")
    expect(page.locator("tbody")).to_contain_text("No enrollments with this status.")
    app.shot("after bulk unenroll")

    with engine.connect() as db:
        here = enrolling.count_by_status(db, workspace_id=world.ws, sequence_id=sequence_id)
        there = enrolling.count_by_status(db, workspace_id=world.ws, sequence_id=other)
    assert here == {"unenrolled": PEOPLE}
    assert there == {"not_started": 5}, "only this sequence (R8)"


def test_R8_unenroll_selected_rows_only(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        sequence_id = world.sequence("Outbound")
        ann = world.person("ann@acme.com")
        ben = world.person("ben@acme.com")
        world.enroll(sequence_id, [ann, ben])
    app = open_app(world)
    page = app.page
    app.sign_in()

    app.visit(f"/sequences/{sequence_id}/enrollments", "enrollments tab")
    page.check("input[aria-label='Select ann@acme.com']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Unenroll 1 selected')")
    expect(page.locator(".notice.ok")).to_contain_text("Unenrolled 1 enrollment(s)")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("ben@acme.com")
    app.shot("one unenrolled")
    with engine.connect() as db:
        counts = enrolling.count_by_status(db, workspace_id=world.ws, sequence_id=sequence_id)
    assert counts == {"unenrolled": 1, "not_started": 1}
