"""The Enroll tab in a browser: one person, a pasted list, or a filter with a live count;
how many were enrolled and, for each other one, why not. No manual path lets anybody
through an opt-out or an exclusion (R17)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services.enrollments import enrolling
from optout.services.suppression import optouts
from tests.browser.conftest import App
from tests.browser.page_checks import DESKTOP, check_widths, console_errors
from tests.factories import World


def test_R17_enroll_one_person_a_pasted_list_and_a_filter_with_reasons(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        sequence_id = world.sequence("Outbound")
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person("bob@acme.com", company="acme.com", title="CTO")
        world.person("cat@globex.com", company="globex.com", title="VP Engineering")
        world.person("dan@initech.com", company="initech.com", title="CTO")
        world.person("eve@initech.com", company="initech.com", title="Sales")
        world.exclusion("Globex is a customer", "company", "company.domain in (globex.com)")
        optouts.opt_out(
            world.db,
            workspace_id=world.ws,
            email="bob@acme.com",
            actor="ops",
            channel="manual",
            now=world.now,
        )
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    app.visit(f"/sequences/{sequence_id}", "sequence")
    page.click("nav.tabs >> text=Enroll")
    expect(page.locator("nav.tabs a.active")).to_have_text("Enroll")
    check_widths(app, "enroll tab")

    page.fill("#enroll-address", "ann@acme.com")
    page.press("#enroll-address", "Enter")
    report = page.locator("#enroll-report")
    expect(report.locator("h2")).to_have_text("Enrolled 1 of 1")
    expect(report).not_to_contain_text("Why not enrolled")

    page.fill(
        "#enroll-addresses", "ann@acme.com\nbob@acme.com, cat@globex.com\nzed@nowhere.com nonsense"
    )
    page.click("text=Enroll these people")
    expect(report.locator("h2")).to_have_text("Enrolled 0 of 5")
    rows = report.locator("tbody tr")
    expect(rows).to_have_count(5)
    reasons = {
        rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i).locator("td").nth(1).inner_text()
        for i in range(5)
    }
    assert reasons["nonsense"] == "not a valid email address"
    assert reasons["zed@nowhere.com"] == "nobody in this workspace has this address"
    assert reasons["bob@acme.com"].startswith("bob@acme.com opted out on ")
    assert reasons["cat@globex.com"] == "excluded by 'Globex is a customer'"
    assert reasons["ann@acme.com"] == "already not started in 'Outbound'"
    check_widths(app, "enroll report with reasons")

    # A filter, written with the builder; the count follows as it changes.
    page.select_option("#builder-field", "person.title")
    page.select_option("#builder-op", "contains")
    page.fill("#builder-value", "cto")
    page.click("text=Add condition")
    expect(page.locator("#filter")).to_have_value('person.title contains "cto"')
    expect(page.locator("#enroll-count")).to_contain_text("3 people match now")
    page.fill("#filter", 'person.title contains "cto" and person.email_domain = initech.com')
    expect(page.locator("#enroll-count")).to_contain_text("1 person matches now")
    page.fill("#filter", "person.titel = x")
    expect(page.locator("#enroll-count .notice.error")).to_contain_text("Filter problem")
    page.fill("#filter", 'person.title contains "cto"')
    expect(page.locator("#enroll-count")).to_contain_text("3 people match now")
    page.click("text=Enroll everyone eligible it matches")
    expect(report.locator("h2")).to_have_text("Enrolled 1 of 3")
    expect(report.locator("tbody tr")).to_have_count(2)
    expect(report.locator("tbody")).not_to_contain_text("dan@initech.com")
    check_widths(app, "enroll by filter")

    tab = app.visit(f"/sequences/{sequence_id}/enrollments", "enrollments after enrolling")
    expect(tab.locator("tbody tr")).to_have_count(2)
    expect(tab.locator("tbody")).to_contain_text("ann@acme.com")
    expect(tab.locator("tbody")).to_contain_text("dan@initech.com")
    with engine.connect() as db:
        counts = enrolling.count_by_status(db, workspace_id=world.ws, sequence_id=sequence_id)
    assert counts == {"not_started": 2}
    assert errors == [], "console errors"
