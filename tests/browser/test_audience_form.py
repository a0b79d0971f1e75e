"""Building an audience in the browser: the filter builder with a live count, a persona,
and switching exclusions off for it, where an exclusion that applies to every sequence
cannot be switched off and says so (R16, R24, R30)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.filters import to_text
from optout.services.sequences import audiences
from tests.browser.conftest import App
from tests.browser.page_checks import DESKTOP, check_widths, console_errors
from tests.factories import World


def test_R16_audience_built_in_the_browser_switches_off_only_what_it_may(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person("bob@acme.com", company="acme.com", title="Sales Manager")
        world.person("cat@globex.com", company="globex.com", title="VP Engineering")
        world.person("dan@initech.com", company="initech.com", title="CTO")
        world.person("eve@hooli.com", company="hooli.com", title="CTO")
        world.persona("Technical", include=["cto", "engineering"], exclude=["sales"])
        world.exclusion("Globex is a customer", "company", "company.domain in (globex.com)")
        world.exclusion(
            "Competitors",
            "company",
            "company.domain in (initech.com)",
            exclude_from_sequences=True,
        )
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    app.visit("/audiences", "audiences")
    page.click("text=New audience")
    count = page.locator("#audience-count")
    expect(count).to_contain_text("5 people match now of 5")
    page.fill("#name", "Technical buyers")
    page.select_option("#builder-field", "person.email_domain")
    page.select_option("#builder-op", "in")
    page.fill("#builder-value", "acme.com, globex.com, initech.com")
    page.click("text=Add condition")
    expect(page.locator("#filter")).to_have_value(
        'person.email_domain in ("acme.com", "globex.com", "initech.com")'
    )
    expect(count).to_contain_text("4 people match now of 5")
    page.select_option("#persona", "Technical")
    expect(count).to_contain_text("3 people match now of 5")
    check_widths(app, "new audience")
    page.click("#save-audience")

    expect(page.locator(".notice.ok")).to_contain_text("Created Technical buyers.")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("3 people")
    expect(facts).to_contain_text("Technical")
    expect(facts).to_contain_text("titles without: sales")
    rows = page.locator("tbody tr")
    globex = rows.filter(has_text="Globex is a customer")
    competitors = rows.filter(has_text="Competitors")
    expect(globex).to_contain_text("applies")
    expect(competitors).to_contain_text("enforced")
    expect(competitors).to_contain_text("applies to every sequence; cannot be switched off")
    expect(competitors.locator("button")).to_have_count(0)
    globex.locator("button:has-text('Switch off')").click()
    expect(page.locator(".notice.ok")).to_contain_text("Globex is a customer switched off.")
    expect(rows.filter(has_text="Globex is a customer")).to_contain_text("switched off")
    expect(page.locator("section.panel").nth(1)).to_contain_text("Globex is a customer")
    check_widths(app, "audience with an exclusion switched off")

    page.click("text=Edit")
    expect(page.locator("#filter")).to_have_value(
        "person.email_domain in (acme.com, globex.com, initech.com)"
    )
    expect(page.locator("#persona")).to_have_value("Technical")
    page.fill("#filter", "person.email_domain = acme.com")
    expect(count).to_contain_text("1 person matches now of 5")
    page.select_option("#persona", "")
    expect(count).to_contain_text("2 people match now of 5")
    page.fill("#filter", "person.email_domain == acme.com")
    expect(count.locator(".notice.error")).to_contain_text("Filter problem")
    page.click("#save-audience")
    expect(page.locator(".notice.error").first).to_contain_text("Not saved. (at column 22)")
    check_widths(app, "edit audience with a filter problem")
    page.fill("#filter", "person.email_domain = acme.com")
    page.click("#save-audience")
    expect(page.locator(".notice.ok")).to_contain_text("Saved Technical buyers.")
    expect(facts).to_contain_text("2 people")
    expect(facts).to_contain_text("none")

    with engine.connect() as db:
        audience_id = int(page.url.split("/audiences/")[1].split("?")[0])
        spec = audiences.spec(db, workspace_id=world.ws, audience_id=audience_id)
    assert spec.filter is not None
    assert to_text(spec.filter) == "person.email_domain = acme.com"
    assert spec.persona_name is None
    assert len(spec.switched_off) == 1, "the switch-off stays through the edit"
    assert errors == [], "console errors"
