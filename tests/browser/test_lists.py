"""Finding and listing in a browser: the search box of every page finds a person and a
company; long lists page and sort on the server, and their links survive a reload."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect

from optout.services.directory import people
from tests.browser.conftest import App
from tests.browser.page_checks import check_widths, console_errors
from tests.factories import World


def test_search_box_finds_a_person_by_name_and_a_company_by_domain_or_name(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        acme = world.company("acme.com", "Acme Corporation")
        world.company("acme.co.uk", "Acme UK")
        ann = people.create(
            world.db,
            workspace_id=world.ws,
            email="ann.lee@acme.com",
            first_name="Ann",
            last_name="Lee",
            now=world.now,
        )
        world.person("bob@acme.com", company="acme.com", first_name="Bob")
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    app.sign_in()

    # From the dashboard's search box: one person's name goes straight to them.
    app.visit("/", "dashboard")
    page.fill("#site-search", "ANN LEE")
    page.press("#site-search", "Enter")
    page.wait_for_url(app.url(f"/people/{ann}"))
    expect(page.locator("h1")).to_have_text("Ann Lee")
    expect(page.locator(".content")).to_contain_text("ann.lee@acme.com")
    app.shot("person found by name")

    # Two companies begin with "acme": a short results page, then a click.
    page.fill("#site-search", "acme")
    page.press("#site-search", "Enter")
    page.wait_for_load_state("networkidle")
    results = page.locator("#search-results tbody tr")
    expect(results.filter(has_text="company")).to_have_count(2)
    expect(page.locator("#search-results")).to_contain_text("acme.co.uk")
    check_widths(app, "search results")
    page.click("#search-results a:has-text('acme.com')")
    page.wait_for_url(app.url(f"/companies/{acme}"))
    expect(page.locator("h1")).to_have_text("Acme Corporation")
    expect(page.locator("#company-people")).to_contain_text("bob@acme.com")
    check_widths(app, "company page")

    # An exact domain goes straight to the company, from any page.
    page.fill("#site-search", "acme.co.uk")
    page.press("#site-search", "Enter")
    page.wait_for_load_state("networkidle")
    expect(page.locator("h1")).to_have_text("Acme UK")

    page.fill("#site-search", "nobody-here")
    page.press("#site-search", "Enter")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#search-results")).to_contain_text("Nothing begins with “nobody-here”")
    assert errors == []


def test_people_list_pages_and_sorts_and_the_links_survive_a_reload(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        for i in range(60):
            world.person(f"p{i:02d}@example.com", first_name=f"Zed{59 - i:02d}")
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    app.sign_in()

    listing = app.visit("/people", "people, newest first")
    rows = listing.locator("#people tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("p59@example.com")
    expect(listing.locator("a[rel=prev]")).to_have_count(0)

    listing.click("text=Next →")
    listing.wait_for_load_state("networkidle")
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("p09@example.com")
    expect(rows.last).to_contain_text("p00@example.com")
    listing.reload()
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("p09@example.com")
    check_widths(app, "people, second page")

    listing.click("text=← Previous")
    listing.wait_for_load_state("networkidle")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("p59@example.com")

    listing.click("nav.sorts >> text=Email")
    listing.wait_for_load_state("networkidle")
    expect(rows.first).to_contain_text("p00@example.com")
    expect(listing.locator("nav.sorts b")).to_have_text("Email")
    listing.click("text=Next →")
    listing.wait_for_load_state("networkidle")
    expect(rows.first).to_contain_text("p50@example.com")
    assert "sort=email" in listing.url
    app.shot("people by email, second page")
    assert errors == []
