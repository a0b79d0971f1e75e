"""Forms work by keyboard alone: sign in and build an exclusion with Tab, typing, Space
and Enter, never the mouse; focus moves in reading order and is visible (R22)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine

from optout.db import tables as t
from tests.browser.conftest import PASSWORD, App
from tests.browser.page_checks import DESKTOP, check_page, console_errors
from tests.factories import World

MAX_TABS = 60


def _focused(page: Page) -> str:
    """The focused element as `tag#id` or `tag[name=value]`."""
    return str(
        page.evaluate(
            """() => {
                const e = document.activeElement;
                if (!e || e === document.body) return "body";
                const tag = e.tagName.toLowerCase();
                if (e.id) return `${tag}#${e.id}`;
                const value = e.type === "radio" ? `=${e.value}` : "";
                if (e.name) return `${tag}[name=${e.name}]${value}`;
                return `${tag}:${(e.textContent || "").trim()}`;
            }"""
        )
    )


def _tab_to(page: Page, target: str, passed: list[str]) -> None:
    """Press Tab until `target` has the focus, noting every element passed on the way."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        here = _focused(page)
        passed.append(here)
        if here == target:
            outline = page.evaluate(
                """() => { const s = getComputedStyle(document.activeElement);
                           return s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0; }"""
            )
            assert outline, f"{target} has the focus but shows no outline"
            return
    raise AssertionError(f"{MAX_TABS} Tabs never reached {target}: {passed[-MAX_TABS:]}")


def test_R22_sign_in_and_an_exclusion_built_by_keyboard_alone(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        world.company("acme.com", "Acme")
        for n in range(8):
            world.person(f"p{n}@globex.com", company="globex.com")
        world.person("ann@acme.com", company="acme.com")
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})

    page.goto(app.url("/login"))
    passed: list[str] = []
    _tab_to(page, "input#workspace", passed)
    page.keyboard.type(app.world_slug)
    _tab_to(page, "input#email", passed)
    page.keyboard.type(app.user)
    _tab_to(page, "input#password", passed)
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Dashboard")

    page.goto(app.url("/exclusions/new"))
    page.wait_for_load_state("networkidle")
    passed = []
    _tab_to(page, "input#name", passed)
    page.keyboard.type("Acme is a customer")
    _tab_to(page, "input[name=level]=company", passed)  # the checked radio of the group
    _tab_to(page, "textarea#filter", passed)
    page.keyboard.type("company.domain in (acme.com)")
    _tab_to(page, "select#builder-field", passed)
    _tab_to(page, "select#builder-op", passed)
    _tab_to(page, "input#builder-value", passed)
    _tab_to(page, "input[name=unenroll_existing_on_save]", passed)
    page.keyboard.press("Space")
    expect(page.locator("input[name=unenroll_existing_on_save]")).to_be_checked()
    expect(page.locator("#preview")).to_contain_text("1 people matched of 9")
    _tab_to(page, "button:Create exclusion", passed)
    # The focus went down the form in reading order: the sidebar first, then the fields.
    order = [passed.index(x) for x in ("input#name", "textarea#filter", "input#builder-value")]
    assert order == sorted(order)
    check_page(app, "exclusion form filled by keyboard")
    page.keyboard.press("Enter")

    expect(page.locator(".notice.ok")).to_contain_text("Created Acme is a customer.")
    with engine.connect() as db:
        saved = db.execute(
            sa.select(t.exclusions.c.level, t.exclusions.c.unenroll_existing_on_save).where(
                t.exclusions.c.workspace_id == world.ws, t.exclusions.c.name == "Acme is a customer"
            )
        ).one()
    assert tuple(saved) == ("company", True)
    assert not errors, errors
