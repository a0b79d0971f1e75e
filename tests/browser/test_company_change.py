"""A person's company on their page: emptying the domain field never removes it; removing
or changing it names the exclusions that stop covering the person and waits for a yes
(R12): a customer does not become emailable without a word."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services.directory import people
from tests.browser.conftest import App
from tests.browser.page_checks import check_page
from tests.factories import World


def _company(engine: Engine, world: World, person_id: int) -> int | None:
    with engine.connect() as db:
        found: int | None = people.get(db, workspace_id=world.ws, person_id=person_id)["company_id"]
        return found


def test_R12_removing_or_changing_a_customers_company_asks_first(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        acme = world.company("acme.com", "Acme")
        world.company("globex.io", "Globex")
        for n in range(8):
            world.person(f"p{n}@initech.com", company="initech.com")
        dan = world.person("daniel.rossi@acme.com", company="acme.com", first_name="Daniel")
        world.sequence("Q4 Outbound")
        world.exclusion(
            "Current customers", "company", "company.domain in (acme.com)",
            exclude_from_sequences=True,
        )  # fmt: skip
    app = open_app(world)
    page = app.page
    app.sign_in()

    person = app.visit(f"/people/{dan}", "a customer")
    expect(person.locator("#explain .verdict")).to_contain_text("BLOCKED")

    # Emptying the field and saving removes nothing.
    page.fill("#company-domain", "")
    page.click("button:has-text('Change company')")
    assert _company(engine, world, dan) == acme

    # Removing is its own action: it names the rule that stops and waits.
    page.click("#remove-company")
    expect(page.locator("h1")).to_contain_text("Remove the company of daniel.rossi@acme.com?")
    expect(page.locator("#stopping-rules")).to_contain_text("Current customers")
    expect(page.locator("#stopping-rules")).to_contain_text("set to apply in every sequence")
    check_page(app, "remove company asks first")
    page.click("text=Cancel")
    assert _company(engine, world, dan) == acme
    expect(page.locator("#explain .verdict")).to_contain_text("BLOCKED")

    # Changing it to a company no rule covers asks too; cancelling changes nothing.
    page.fill("#company-domain", "globex.io")
    page.click("button:has-text('Change company')")
    expect(page.locator("h1")).to_contain_text("Move daniel.rossi@acme.com to globex.io?")
    expect(page.locator("#stopping-rules")).to_contain_text("Current customers")
    app.shot("change company asks first")
    page.click("text=Cancel")
    assert _company(engine, world, dan) == acme

    # A yes removes it, and explain now lets Daniel in.
    page.click("#remove-company")
    page.click("#confirm-company")
    expect(page.locator(".notice.ok")).to_contain_text("Company removed.")
    expect(page.locator("#company-none")).to_be_visible()
    expect(page.locator("#explain .verdict")).to_contain_text("ALLOWED")
    assert _company(engine, world, dan) is None
