"""A sequence's Not enrolled list (R30): before any automatic enrollment it says none has
run; the run is started from the Enroll tab; a person in the list opens explain for that
same sequence, which names the same rule (R29)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect

from tests.browser.conftest import App
from tests.browser.page_checks import check_page
from tests.factories import World


def test_R29_R30_why_not_enrolled_keeps_the_sequence(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        world.company("acme.com", "Acme")
        dan = world.person("daniel.rossi@acme.com", company="acme.com", title="CTO")
        world.person("zoe@initech.com", company="initech.com", title="CTO")
        for n in range(8):
            world.person(f"p{n}@initech.com", company="initech.com", title="Designer")
        world.exclusion(
            "Current customers", "company", "company.domain in (acme.com)",
            exclude_from_sequences=True,
        )  # fmt: skip
        world.audience("Engineering leaders", filter="person.title contains any (cto)")
        world.ruleset("Transactional, exclusions off", exclusions_enabled=False)
        webinar = world.sequence("Webinar Follow-up", ruleset="Transactional, exclusions off")
        # Enrolled elsewhere: his page alone would open explain for the webinar.
        assert world.enroll(webinar, [dan]).enrolled == 1
        outbound = world.sequence("Q4 Outbound", audience="Engineering leaders")
    app = open_app(world)
    page = app.page
    app.sign_in()

    app.visit(f"/sequences/{outbound}/not-enrolled", "not enrolled before any run")
    expect(page.locator("tbody")).to_contain_text(
        "No automatic enrollment from the audience has run for this sequence yet"
    )
    expect(page.locator("button:has-text('Enroll from audience now')")).to_have_count(0)

    page.click("nav.tabs >> a:text-is('Enroll')")
    page.click("button:has-text('Enroll from audience now')")
    expect(page.locator(".notice.ok")).to_contain_text("2 in the audience: 1 enrolled now")
    row = page.locator("tbody tr", has_text="daniel.rossi@acme.com")
    expect(row).to_contain_text("Current customers")
    check_page(app, "not enrolled after a run")

    row.locator("a:has-text('daniel.rossi@acme.com')").click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#explain-sequence")).to_have_value("Q4 Outbound")
    verdict = page.locator("#explain .verdict")
    expect(verdict).to_contain_text("may not be enrolled in “Q4 Outbound” now")
    expect(verdict.locator("#blocking-rule")).to_contain_text("Current customers")
    app.shot("explain for the same sequence")
