"""Background jobs in a browser: a bulk unenroll whose progress bar survives a reload
halfway and reaches the summary (R10), with the job's steps driven by the test so that
"halfway" is a known point."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.jobs import kinds, store
from optout.services.enrollments import enrolling
from tests.browser.conftest import App
from tests.browser.page_checks import check_widths, console_errors
from tests.factories import World

PEOPLE = 130


def _step(engine: Engine, job_id: int, runner: str, now: datetime) -> bool:
    """One step of the job as a runner does it; whether the job is finished."""
    with engine.begin() as db:
        held = store.held(db, job_id=job_id, runner=runner)
        outcome = kinds.STEPS[held.kind](db, held, now=now, progress=lambda d, n: None)
        store.record_step(db, job=held, runner=runner, outcome=outcome, now=now)
    return outcome.finished


@pytest.mark.parametrize("open_app", [False], indirect=True)
def test_R10_bulk_unenroll_progress_bar_survives_a_reload_halfway(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with web_world() as world:
        sequence_id = world.sequence("Outbound")
        world.enroll(sequence_id, [world.person(f"p{i:03d}@ex{i % 9}.com") for i in range(PEOPLE)])
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    app.sign_in()
    app.visit(f"/sequences/{sequence_id}/enrollments", "enrollments")
    page.check("#select-all")
    page.check("input[name=scope][value=matching]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Unenroll')")

    expect(page.locator("h1")).to_contain_text("Bulk unenroll from Outbound")
    expect(page.locator("#job-state")).to_have_text("Waiting to start")
    expect(page.locator("#job-bar")).to_have_attribute("value", "0")
    job_id = int(page.url.rsplit("/", 1)[1])
    app.shot("queued")

    # A runner takes it and commits the count and one chunk of 50, then the page reloads.
    monkeypatch.setattr(kinds, "BULK_CHUNK", 50)
    with engine.begin() as db:
        assert store.claim_next(db, runner="browser-test", now=now) is not None
    assert not _step(engine, job_id, "browser-test", now)
    assert not _step(engine, job_id, "browser-test", now)
    page.reload()
    expect(page.locator("#job-state")).to_have_text("Running")
    expect(page.locator("#job-count")).to_have_text(f"50 of {PEOPLE}")
    expect(page.locator("#job-bar")).to_have_attribute("value", "38")
    check_widths(app, "halfway after a reload")
    with engine.connect() as db:
        halfway = enrolling.count_by_status(db, workspace_id=world.ws, sequence_id=sequence_id)
    assert halfway == {"unenrolled": 50, "not_started": PEOPLE - 50}

    # The rest: the page, polling, gets to the end by itself.
    while not _step(engine, job_id, "browser-test", now):
        pass
    expect(page.locator("#job-state")).to_have_text("Done")
    expect(page.locator("#job-bar")).to_have_attribute("value", "100")
    expect(page.locator("#job-summary")).to_contain_text(
        f"Unenrolled {PEOPLE} enrollment(s) and cancelled {PEOPLE} queued email(s)"
    )
    app.shot("done")
    page.reload()
    expect(page.locator("#job-summary")).to_contain_text(f"Unenrolled {PEOPLE} enrollment(s)")

    app.visit("/jobs", "job list")
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Bulk unenroll from Outbound")
    expect(row).to_contain_text("Done")
    expect(row).to_contain_text("100%")
    assert errors == []
