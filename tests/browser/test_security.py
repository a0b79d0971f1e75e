"""Security in a real browser: the session cookie's flags, forms refused with a missing
or forged CSRF token and accepted with the right one, the sign-in lock, and pages that
run under the Content-Security-Policy without a violation (the fixture fails on any)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services.suppression import optouts
from tests.browser.conftest import App
from tests.factories import World


def _opted_out(engine: Engine, world: World, email: str) -> bool:
    with engine.connect() as db:
        return bool(optouts.ledger(db, workspace_id=world.ws, email=email))


def test_session_cookie_is_httponly_and_lax(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        pass
    app = open_app(world)
    app.sign_in()
    [session] = [c for c in app.page.context.cookies() if c["name"] == "optout_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is False  # served over plain http here; Secure over https
    assert app.page.evaluate("document.cookie") == ""  # no script can read it


def test_form_with_a_missing_or_forged_csrf_token_is_refused(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        ann = world.person("ann@acme.com", company="acme.com")
    app = open_app(world)
    page = app.page
    app.sign_in()
    page.on("dialog", lambda dialog: dialog.accept())
    form = "form[action$='/opt-out']"

    for tamper, label in (
        (f"document.querySelector(\"{form} input[name=csrf_token]\").value = 'forged'", "forged"),
        (f'document.querySelector("{form} input[name=csrf_token]").remove()', "missing"),
    ):
        app.visit(f"/people/{ann}", f"person page before a {label} token")
        page.evaluate(tamper)
        page.fill("#reason", "Asked us by phone to stop")
        page.click("button:has-text('Opt out of all email')")
        expect(page.locator("body")).to_contain_text("CSRF token mismatch")
        app.shot(f"{label} token refused")
        assert not _opted_out(engine, world, "ann@acme.com")

    app.visit(f"/people/{ann}", "person page")
    page.fill("#reason", "Asked us by phone to stop")
    page.click("button:has-text('Opt out of all email')")
    expect(page.locator(".notice.ok")).to_contain_text("Opted out ann@acme.com")
    assert _opted_out(engine, world, "ann@acme.com")


def test_htmx_request_with_a_forged_csrf_header_is_refused(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        world.company("acme.com", "Acme")
        world.person("ann@acme.com", company="acme.com")
    app = open_app(world)
    page = app.page
    app.sign_in()
    app.visit("/exclusions/new", "new exclusion")
    preview = page.locator("#preview")
    page.fill("#filter", "company.domain in (acme.com)")
    expect(preview).to_contain_text("1 people matched of 1")
    page.evaluate(
        "document.body.setAttribute('hx-headers', JSON.stringify({'X-CSRF-Token': 'forged'}))"
    )
    page.fill("#filter", "company.domain in (acme.com, globex.com)")
    expect(preview).to_contain_text("CSRF token mismatch")
    app.shot("forged header refused")


def test_sign_in_is_paused_after_repeated_failures(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        pass
    app = open_app(world)
    page = app.page
    page.goto(app.url("/login"))
    for _ in range(5):
        page.fill("#workspace", app.world_slug)
        page.fill("#email", app.user)
        page.fill("#password", "not the password")
        page.click("button[type=submit]")
        expect(page.locator(".notice.error")).to_contain_text("Wrong workspace")
    app.sign_in()  # now with the right password
    expect(page.locator(".notice.error")).to_contain_text("Too many failed sign-ins")
    expect(page.locator(".notice.error")).to_contain_text("try again in 15 minutes")
    app.shot("sign-in paused")
    assert not [c for c in page.context.cookies() if c["name"] == "optout_session"]


def test_dashboard_bars_draw_under_the_content_security_policy(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        world.company("acme.com", "Acme")
        world.person("ann@acme.com", company="acme.com")
        world.person("ben@acme.com", company="acme.com")
        world.person("cy@globex.com", company="globex.com")
        world.exclusion("Acme", "company", "company.domain in (acme.com)")
        world.exclusion("Everyone at globex", "company", "company.domain in (globex.com)")
    app = open_app(world)
    app.sign_in()
    page = app.visit("/", "dashboard")
    bars = page.locator(".bar rect")
    expect(bars).to_have_count(2)
    acme, globex = (bars.nth(n).bounding_box() for n in range(2))
    assert acme is not None
    assert globex is not None
    assert abs(globex["width"] * 2 - acme["width"]) < 2  # 1 person is half of 2
