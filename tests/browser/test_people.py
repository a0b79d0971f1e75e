"""The person page in a browser: the explain panel names the rule that blocks (R29), and
any member can opt a person out with a reason (R2)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services.directory import people
from optout.services.suppression import optouts
from tests.browser.conftest import App
from tests.factories import World


def test_R29_explain_panel_names_the_blocking_rule(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        world.company("rivalsoft.com", "Rivalsoft")
        eve = world.person("eve@rivalsoft.com", company="rivalsoft.com", title="CTO")
        world.person("sam@friendly.io", company="friendly.io")
        world.exclusion(
            "Competitors",
            "company",
            "company.domain in (rivalsoft.com, competeco.io)",
            exclude_from_sequences=True,
        )
        world.sequence("Outbound")
    app = open_app(world)
    page = app.page
    app.sign_in()

    person = app.visit(f"/people/{eve}", "person page")
    verdict = person.locator("#explain .verdict")
    expect(verdict).to_contain_text("BLOCKED")
    expect(verdict).to_contain_text("eve@rivalsoft.com may not be enrolled in “Outbound” now")
    expect(verdict.locator("#blocking-rule")).to_have_text("excluded by 'Competitors'")
    blocking = person.locator("#explain tr[data-primary]")
    expect(blocking).to_have_count(1)
    expect(blocking).to_have_class("highlight")
    expect(blocking).to_contain_text("Exclusion in every sequence")
    expect(blocking).to_contain_text(
        "Company domain is one of (rivalsoft.com, competeco.io) ← rivalsoft.com"
    )
    checks = person.locator("#explain tbody tr")
    # R16 order: the absolute checks first, a spam complaint before all (R36).
    expect(checks.first).to_contain_text("has sent no spam complaint")
    app.shot("explain: blocked by an exclusion")

    person.select_option("select[name=purpose]", "send")
    expect(verdict).to_contain_text("may not be emailed by “Outbound” now")
    app.shot("explain: send")

    page.fill("#reason", "Asked us by phone to stop")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Opt out of all email')")
    expect(page.locator(".notice.ok")).to_contain_text("Opted out eve@rivalsoft.com")
    expect(verdict.locator("#blocking-rule")).to_contain_text("eve@rivalsoft.com opted out")
    app.shot("opted out")


def test_R2_member_opt_out_records_who_why_and_channel(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        ann = world.person("ann@acme.com", company="acme.com")
    app = open_app(world)
    page = app.page
    app.sign_in()
    app.visit("/people?q=ann@acme.com", "search opens the person")
    expect(page).to_have_url(app.url(f"/people/{ann}"))
    page.fill("#reason", "Requested at the trade show")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Opt out of all email')")
    expect(page.locator("#opt-out")).to_contain_text("Requested at the trade show")
    app.shot("opted out")
    with engine.connect() as db:
        [entry] = optouts.ledger(db, workspace_id=world.ws, email="ann@acme.com")
    assert (entry["actor"], entry["channel"], entry["reason"]) == (
        app.user,
        "manual",
        "Requested at the trade show",
    )


def test_R12_person_page_shows_how_the_company_was_linked_and_changes_it(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        world.company("acme.com", "Acme")
        ann = world.person("ann@acme.com")  # no company given: linked by her email domain
        sequence_id = world.sequence("Outbound")
        world.enroll(sequence_id, [ann])
        world.exclusion(
            "Globex is a customer", "company", "company.domain in (globex.io)",
            exclude_from_sequences=True,
        )  # fmt: skip
    app = open_app(world)
    page = app.page
    app.sign_in()

    app.visit(f"/people/{ann}", "company linked by email domain")
    expect(page.locator("#company-linked-by")).to_have_text("by email domain")
    expect(page.locator("#company-domain")).to_have_value("acme.com")

    page.fill("#company-domain", "Globex.io")
    page.click("button:has-text('Change company')")
    expect(page.locator(".notice.ok")).to_contain_text("Company set to globex.io.")
    expect(page.locator(".notice.ok")).to_contain_text("Ended 1 active enrollment(s)")
    expect(page.locator("#company-linked-by")).to_have_text("set by hand")
    app.shot("company set by hand")

    page.click("#remove-company")  # removing is its own action, asked first
    expect(page.locator("#stopping-rules")).to_contain_text("Globex is a customer")
    page.click("#confirm-company")
    expect(page.locator(".notice.ok")).to_contain_text("Company removed.")
    expect(page.locator("#company-none")).to_contain_text("removed by hand")
    with engine.connect() as db:
        assert people.get(db, workspace_id=world.ws, person_id=ann)["company_id"] is None
