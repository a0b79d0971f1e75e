"""The exclusion form in a browser: builder, live impact preview, mass-exclusion
confirmation, and unenroll on save (R13, R18, R22)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services.enrollments import enrolling
from tests.browser.conftest import App
from tests.factories import World


def test_R13_company_exclusion_saved_with_unenroll_on_save_removes_enrollments(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        world.company("acme.com", "Acme")
        world.company("acme.co.uk", "Acme UK")
        world.company("globex.com", "Globex")
        acme = [
            world.person("ann@acme.com", company="acme.com", first_name="Ann"),
            world.person("ben@acme.com", company="acme.com", first_name="Ben"),
        ]
        others = [
            world.person("uma@acme.co.uk", company="acme.co.uk"),
            world.person("gil@globex.com", company="globex.com"),
            world.person("gus@globex.com", company="globex.com"),
        ]
        sequence_id = world.sequence("Outbound")
        world.enroll(sequence_id, acme + others)
    app = open_app(world)
    page = app.page
    app.sign_in()

    app.visit("/exclusions/new", "new exclusion")
    page.fill("#name", "Acme is a customer")
    # The builder writes the condition into the filter text; the preview follows.
    page.select_option("#builder-field", "company.domain")
    page.select_option("#builder-op", "in")
    page.fill("#builder-value", "acme.com")
    page.click("text=Add condition")
    expect(page.locator("#filter")).to_have_value('company.domain in ("acme.com")')
    preview = page.locator("#preview")
    expect(preview).to_contain_text("2 people matched of 5")
    expect(preview).to_contain_text("acme.co.uk")  # the near miss (R18)
    page.check("input[name=unenroll_existing_on_save]")
    expect(preview).to_contain_text("active enrollments a save removes")
    expect(preview.locator(".numbers div").nth(2)).to_contain_text("2")
    app.shot("preview with unenroll on save")

    # 2 of 5 people is above the workspace's 20%: the save asks first (R22).
    page.click("text=Create exclusion")
    confirmation = page.locator("#confirmation")
    expect(confirmation).to_contain_text("Not saved yet: this is a mass exclusion")
    expect(confirmation).to_contain_text("Saving it unenrolls 2 active enrollment(s)")
    app.shot("needs confirmation")
    with engine.connect() as db:
        counts = enrolling.count_by_status(db, workspace_id=world.ws, sequence_id=sequence_id)
    assert counts == {"not_started": 5}, "nothing is saved before the confirmation"

    # A confirmed save that unenrolls runs as a background job; its page shows the result.
    page.click("text=Save anyway")
    expect(page.locator("#job-state")).to_have_text("Done")
    expect(page.locator("#job-summary")).to_contain_text(
        "Saved Acme is a customer: unenrolled 2 enrollment(s) and cancelled 2 queued email(s)"
    )
    app.shot("saved")

    tab = app.visit(f"/sequences/{sequence_id}/enrollments", "enrollments tab, active")
    expect(tab.locator("tbody tr")).to_have_count(3)
    expect(tab.locator("tbody")).not_to_contain_text("acme.com")
    tab.select_option("#status-filter", "unenrolled")
    tab.click("button:has-text('Filter')")
    rows = tab.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("excluded by 'Acme is a customer' (unenroll on save)")
    expect(tab.locator("tbody")).to_contain_text("ann@acme.com")
    expect(tab.locator("tbody")).to_contain_text("ben@acme.com")
    app.shot("enrollments tab, unenrolled")
