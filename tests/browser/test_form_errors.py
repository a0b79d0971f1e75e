"""A refused form in the browser: the admin types a From with two @-signs into the
mailbox form and sees, beside that input, what is wrong with what they typed and what
would do, with everything else they typed still in the form (R34)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect

from optout.services.access import accounts
from tests.browser.conftest import App
from tests.browser.page_checks import check_page
from tests.factories import World


def test_R34_a_bad_mailbox_address_is_told_beside_it_and_the_form_stays_filled(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        user = f"ops-{world.workspace.slug}@example.com"
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="admin")
    app = open_app(world)
    page = app.page
    app.sign_in()
    app.visit("/mailboxes", "mailboxes")

    form = page.locator("form[action='/mailboxes/new']")
    form.locator("input[name=address]").fill("a@@b")
    form.locator("input[name=display_name]").fill("Ann Lee")
    form.locator("input[name=daily_limit]").fill("40")
    form.locator("input[name=gap]").fill("120")
    form.locator("input[name=time_zone]").fill("Europe/Berlin")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")

    beside = page.locator("#address-error")
    expect(beside).to_be_visible()
    expect(beside).to_contain_text("Mailbox address: 'a@@b' is not an email address")
    expect(beside).to_contain_text("it has 2 @-signs")
    expect(beside).to_contain_text("such as name@example.com")
    address = page.locator("form[action='/mailboxes/new'] input[name=address]")
    expect(address).to_have_value("a@@b")
    expect(address).to_have_attribute("aria-invalid", "true")
    expect(address).to_have_attribute("aria-describedby", "address-error")
    # The message sits right under the input it is about.
    box, told = address.bounding_box(), beside.bounding_box()
    assert box is not None
    assert told is not None
    assert 0 <= told["y"] - (box["y"] + box["height"]) < 40
    form = page.locator("form[action='/mailboxes/new']")
    expect(form.locator("input[name=display_name]")).to_have_value("Ann Lee")
    expect(form.locator("input[name=daily_limit]")).to_have_value("40")
    expect(form.locator("input[name=gap]")).to_have_value("120")
    expect(form.locator("input[name=time_zone]")).to_have_value("Europe/Berlin")
    # The top of the page says it too, and leads to the input.
    summary = page.locator("#form-error a")
    expect(summary).to_contain_text("'a@@b' is not an email address")
    check_page(app, "mailbox refused beside its address")

    address.fill("Ann Lee <ann@acme-sales.com>")
    page.locator("form[action='/mailboxes/new'] button[type=submit]").click()
    expect(page.locator(".notice.ok")).to_contain_text("Added ann@acme-sales.com.")
    expect(page.locator("#address-error")).to_have_count(0)


def test_R34_a_company_domain_with_two_dots_is_told_on_the_persons_page(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        world.company("acme.com", "Acme")
        dan = world.person("dan@acme.com", company="acme.com")
    app = open_app(world)
    page = app.page
    app.sign_in()
    app.visit(f"/people/{dan}", "a person at acme.com")

    page.fill("#company-domain", "acme..com")
    page.click("button:has-text('Change company')")
    page.wait_for_load_state("networkidle")

    beside = page.locator("#domain-error")
    expect(beside).to_have_text(
        "Company domain: 'acme..com' is not a domain (it has two dots in a row): "
        "type a domain such as acme.com"
    )
    expect(page.locator("h1")).to_contain_text("dan@acme.com")  # the person's page
    field = page.locator("#company-domain")
    expect(field).to_have_value("acme..com")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-error a")).to_have_attribute("href", "#domain-error")
    app.shot("company domain refused beside it")
    page.click("#form-error a")
    expect(beside).to_be_in_viewport()
