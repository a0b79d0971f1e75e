"""Personas and rulesets built in the browser: title words with a live count of who
matches (R24), exclusions on or off, cooldown and company cap (R9, R16, R27), each with
the sequences that use it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services.access import accounts
from optout.services.sequences import audiences, definitions, personas, rulesets
from tests.browser.conftest import App
from tests.browser.page_checks import DESKTOP, check_widths, console_errors
from tests.factories import World


def test_R24_persona_built_in_the_browser_counts_who_its_title_words_take(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        world.person("ann@acme.com", title="CTO")
        world.person("bob@acme.com", title="Sales Director")
        world.person("cat@globex.com", title="VP Engineering")
        world.person("dan@globex.com", title="Head of Sales Engineering")
        world.person("eve@hooli.com", title="Office Manager")
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    app.visit("/", "dashboard")
    page.click("nav.sidebar >> text=Personas")
    page.click("text=New persona")
    count = page.locator("#persona-count")
    expect(count).to_contain_text("5 people match now of 5")
    page.fill("#name", "Technical")
    page.fill("#include", "cto\nengineering")
    # "cto" is in "Director" too: the count shows it before anything is saved.
    expect(count).to_contain_text("4 people match now of 5")
    page.fill("#exclude", "sales")
    expect(count).to_contain_text("2 people match now of 5")
    check_widths(app, "new persona")
    page.click("#save-persona")
    expect(page.locator(".notice.ok")).to_contain_text("Created Technical.")
    expect(page.locator("#include")).to_have_value("cto\nengineering")
    expect(page.locator("#persona-users")).to_contain_text("none")

    with engine.begin() as db:  # an audience and a sequence come to use it
        audience = audiences.create(
            db, workspace_id=world.ws, name="Tech buyers", persona="Technical", now=world.now
        )
        rulesets.create(db, workspace_id=world.ws, name="Default", now=world.now)
        definitions.create(
            db,
            workspace_id=world.ws,
            name="Outbound",
            ruleset="Default",
            audience="Tech buyers",
            from_address="sam@acme-sales.com",
            now=world.now,
        )
    page.reload()
    users = page.locator("#persona-users")
    expect(users).to_contain_text("Tech buyers")
    expect(users).to_contain_text("Outbound (via Tech buyers)")
    check_widths(app, "persona with its users")

    page.fill("#name", "Engineers")
    page.fill("#include", "engineering, cto")
    page.fill("#exclude", "")
    expect(count).to_contain_text("4 people match now of 5")
    page.fill("#exclude", "sales,   ,")
    page.click("#save-persona")
    expect(page.locator(".notice.ok")).to_contain_text("Saved Engineers.")
    app.visit("/personas", "personas")
    row = page.locator("tbody tr").filter(has_text="Engineers")
    expect(row).to_contain_text("engineering, cto")
    expect(row).to_contain_text("sales")
    expect(row).to_contain_text("Tech buyers")
    expect(row).to_contain_text("Outbound")
    check_widths(app, "personas list")
    with engine.connect() as db:
        saved = personas.get_by_name(db, workspace_id=world.ws, name="Engineers")
        spec = audiences.spec(db, workspace_id=world.ws, audience_id=audience)
    assert (saved.include_keywords, saved.exclude_keywords) == (("engineering", "cto"), ("sales",))
    assert spec.persona_name == "Engineers"
    assert errors == [], "console errors"


def test_R27_ruleset_built_in_the_browser_by_an_admin_shows_its_sequences(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        world.sequence("Outbound")  # under the "Default" ruleset
        admin = f"ops-{world.workspace.slug}@example.com"
        accounts.set_member(world.db, workspace_id=world.ws, email=admin, role="admin")
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    app.visit("/rulesets", "rulesets")
    expect(page.locator("tbody tr").filter(has_text="Default")).to_contain_text("Outbound")
    page.click("text=New ruleset")
    page.fill("#name", "Default")
    page.fill("#reenroll_cooldown_days", "30")
    page.click("#save-ruleset")
    expect(page.locator(".notice.error")).to_contain_text("a ruleset named 'Default' exists")
    expect(page.locator("#reenroll_cooldown_days")).to_have_value("30")
    page.fill("#name", "Careful")
    page.fill("#reenroll_cooldown_days", "30")
    page.fill("#max_active_per_company", "2")
    page.uncheck("#exclusions_enabled")
    check_widths(app, "new ruleset")
    page.click("#save-ruleset")
    expect(page.locator(".notice.ok")).to_contain_text("Created Careful.")
    expect(page.locator("#ruleset-sequences")).to_contain_text("No sequence uses it yet.")
    expect(page.locator("#exclusions_enabled")).not_to_be_checked()
    expect(page.locator("#reenroll_cooldown_days")).to_have_value("30")
    expect(page.locator("#max_active_per_company")).to_have_value("2")

    # A sequence switches to it on its own edit page; the ruleset then lists it.
    with engine.connect() as db:
        outbound = definitions.spec_by_name(db, workspace_id=world.ws, name="Outbound").id
    app.visit(f"/sequences/{outbound}/edit", "edit sequence")
    page.select_option("#ruleset", "Careful")
    page.click("#save-sequence")
    expect(page.locator(".notice.ok")).to_contain_text("Saved Outbound.")
    page.click("nav.sidebar >> text=Rulesets")
    page.click("tbody >> text=Careful")
    expect(page.locator("#ruleset-sequences")).to_contain_text("Outbound")
    page.check("#exclusions_enabled")
    page.fill("#max_active_per_company", "")
    page.click("#save-ruleset")
    expect(page.locator(".notice.ok")).to_contain_text("Saved Careful.")
    check_widths(app, "ruleset with its sequences")
    with engine.connect() as db:
        careful = definitions.spec_by_name(db, workspace_id=world.ws, name="Outbound").ruleset
    assert (
        careful.name,
        careful.exclusions_enabled,
        careful.reenroll_cooldown_days,
        careful.max_active_per_company,
    ) == ("Careful", True, 30, None)

    # A member reads rulesets but cannot change them.
    with engine.begin() as db:
        accounts.set_member(db, workspace_id=world.ws, email=admin, role="member")
    app.visit("/rulesets", "rulesets as a member")
    expect(page.locator("text=New ruleset")).to_have_count(0)
    page.click("tbody >> text=Careful")
    expect(page.locator(".notice.warn")).to_contain_text("Only an admin of the workspace")
    expect(page.locator("#save-ruleset")).to_be_disabled()
    assert errors == [], "console errors"
