"""An exclusion's own pages in a browser: everyone it matches and the CSV download, its
history after an edit (R35), delete after a preview (R22), archive and restore."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services import fresh_rules
from optout.services.exclusions import saves
from tests.browser.conftest import App
from tests.browser.page_checks import check_widths, console_errors
from tests.factories import World


def _acme(world: World) -> None:
    world.company("acme.com", "Acme")
    world.company("globex.com", "Globex")
    for name in ("ann", "ben", "cy"):
        world.person(f"{name}@acme.com", company="acme.com", first_name=name.title())
    world.person("gil@globex.com", company="globex.com", first_name="Gil")
    for i in range(6):
        world.person(f"other{i}@initech.io", first_name="Other")


def test_R35_match_list_csv_download_and_history_after_an_edit(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    tmp_path: Path,
) -> None:
    with web_world() as world:
        _acme(world)
        rule = world.exclusion("Customers", "company", "company.domain = acme.com").exclusion
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    app.sign_in()

    app.visit(f"/exclusions/{rule.id}", "exclusion form")
    page.click("#exclusion-actions >> text=Who it matches")
    page.wait_for_load_state("networkidle")
    matches = page.locator("#matches tbody tr")
    expect(matches).to_have_count(3)
    expect(matches.first).to_contain_text("ann@acme.com")
    expect(page.locator("#matches")).not_to_contain_text("gil@globex.com")
    check_widths(app, "who it matches")

    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    saved = tmp_path / "matches.csv"
    download_info.value.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert rows[0][:2] == ["email", "first_name"]
    assert [(r[0], r[4]) for r in rows[1:]] == [
        ("ann@acme.com", "acme.com"),
        ("ben@acme.com", "acme.com"),
        ("cy@acme.com", "acme.com"),
    ]

    # An edit through the form, then the history names who made it and both filters.
    app.visit(f"/exclusions/{rule.id}", "before the edit")
    page.fill("#filter", "company.domain in (acme.com, globex.com)")
    page.click("text=Save changes")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#confirmation")).to_contain_text("Not saved yet")  # 4 of 10: > 20%
    page.click("text=Save anyway")
    expect(page.locator(".notice.ok")).to_contain_text("Saved")
    page.click("#exclusion-actions >> text=History")
    page.wait_for_load_state("networkidle")
    history = page.locator("#history tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("created")
    expect(history.nth(1)).to_contain_text(app.user)
    # The filters in words, fields by their labels.
    expect(history.nth(1).locator("td").nth(3)).to_have_text("Company domain is acme.com")
    expect(history.nth(1).locator("td").nth(4)).to_have_text(
        "Company domain is one of (acme.com, globex.com)"
    )
    check_widths(app, "history")
    app.visit(f"/exclusions/{rule.id}/matches", "matches after the edit")
    expect(page.locator("#matches tbody tr")).to_have_count(4)
    assert errors == []


def test_R22_delete_shows_the_impact_first_and_archive_hides_until_restored(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        _acme(world)
        kept = world.exclusion("Customers", "company", "company.domain = acme.com").exclusion
        doomed = world.exclusion("Globex", "company", "company.domain = globex.com").exclusion
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    app.sign_in()

    # Archive: gone from the list in use, shown among the archived, applies nowhere.
    app.visit(f"/exclusions/{kept.id}", "exclusion form")
    page.click("#exclusion-actions >> text=Archive")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".notice.ok")).to_contain_text("Archived Customers")
    expect(page.locator("#exclusions")).not_to_contain_text("Customers")
    with engine.connect() as db:
        in_force = [s.name for s in fresh_rules.all_specs(db, workspace_id=world.ws)]
    assert in_force == ["Globex"]
    page.click("text=Archived")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#exclusions")).to_contain_text("Customers")
    check_widths(app, "archived exclusions")
    page.click("#exclusions >> text=Customers")
    page.wait_for_load_state("networkidle")
    expect(page.locator("h1 .badge")).to_have_text("archived")

    # Restore: 3 of 10 people is a mass exclusion again, so it asks first (R22).
    page.click("#exclusion-actions >> text=Restore")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#confirmation")).to_contain_text("matches 3 of 10 people")
    page.click("#confirmation button:has-text('Restore Customers')")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".notice.ok")).to_contain_text("Restored Customers")
    app.visit("/exclusions", "both in use again")
    expect(page.locator("#exclusions tbody tr")).to_have_count(2)

    # Delete: a preview of who becomes eligible, and nothing gone until confirmed.
    app.visit(f"/exclusions/{doomed.id}", "exclusion to delete")
    page.click("#exclusion-actions >> text=Delete…")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#confirmation")).to_contain_text("It matches 1 of 10 people")
    expect(page.locator("#sample")).to_contain_text("gil@globex.com")
    check_widths(app, "delete preview")
    with engine.connect() as db:
        assert saves.get_by_id(db, workspace_id=world.ws, exclusion_id=doomed.id)
    page.click("#confirmation button:has-text('Delete Globex')")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".notice.ok")).to_contain_text("Deleted Globex.")
    expect(page.locator("#exclusions tbody tr")).to_have_count(1)
    app.visit(f"/exclusions/{doomed.id}/history", "history of a deleted exclusion")
    last = page.locator("#history tbody tr").last
    expect(last).to_contain_text("deleted")
    expect(last).to_contain_text(app.user)
    expect(last.locator("td").nth(3)).to_have_text("Company domain is globex.com")
    assert errors == []
