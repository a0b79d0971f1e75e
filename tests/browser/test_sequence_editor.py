"""Building a sequence in the browser: settings, the steps editor (add, move, delete),
each email rendered live for a real person with its unsubscribe footer (R3), template
errors shown at their step, and pause, resume and archive (R11, R26)."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.services.sequences import definitions
from optout.services.sequences.edits import editable
from tests.browser.conftest import App
from tests.browser.page_checks import DESKTOP, check_widths, console_errors
from tests.factories import World


def test_R26_sequence_built_and_edited_in_the_browser(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        world.ruleset("Default")
        world.ruleset("Careful", reenroll_cooldown_days=30)
        world.audience("CTOs", filter='person.title contains "cto"')
        world.person("ann@acme.com", company="acme.com", first_name="Ann", title="CTO")
        world.person("ben@globex.com", company="globex.com", first_name="Ben")
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    app.visit("/sequences", "sequences")
    page.click("text=New sequence")
    expect(page.locator("h1")).to_have_text("New sequence")
    page.fill("#name", "Outbound Q4")
    page.select_option("#ruleset", "Default")
    page.fill("#from_address", "Sam Seller <sam@acme-sales.com>")
    page.fill("#step-0-first", "Hi {{ person.first_name }}")
    page.fill("#step-0-text", "A note for {{ company.domain }}.")
    preview = page.locator("#step-0 .step-preview")
    # Rendered for the first person of the workspace, footer as it will be sent.
    expect(preview.locator(".rendered-subject")).to_have_text("Hi Ann")
    expect(preview.locator(".rendered-text")).to_contain_text("A note for acme.com.")
    expect(preview.locator(".rendered-text")).to_contain_text(
        re.compile(r"Unsubscribe: http://127\.0\.0\.1:8000/u/[A-Za-z0-9_-]{20,}")
    )
    page.fill("#preview-email", "ben@globex.com")
    page.locator("#preview-email").dispatch_event("change")
    expect(preview.locator(".rendered-subject")).to_have_text("Hi Ben")
    page.fill("#step-0-text", "A note for {{ compny.domain }}.")
    expect(preview).to_contain_text(
        "Template problem: text body template: unknown variable 'compny'"
    )
    page.fill("#step-0-text", "A note for {{ company.domain }}.")
    expect(preview.locator(".rendered-text")).to_contain_text("A note for globex.com.")

    # The steps editor: buttons re-render the form with what was typed kept.
    page.click("text=+ Wait step")
    expect(page.locator("fieldset.step legend")).to_have_text(["Step 1 · Email", "Step 2 · Wait"])
    assert page.evaluate("document.activeElement.id") == "step-1-first", "focus on the new step"
    expect(page.locator("#step-0-first")).to_have_value("Hi {{ person.first_name }}")
    expect(page.locator("#preview-email")).to_have_value("ben@globex.com")
    expect(preview.locator(".rendered-subject")).to_have_text("Hi Ben")
    page.fill("#step-1-first", "2")
    page.click("text=+ Email step")
    page.fill("#step-2-first", "Following up")
    page.fill("#step-2-text", "Any thoughts, {{ person.first_name | default('there') }}?")
    page.click("text=+ Wait step")
    page.fill("#step-3-first", "1")
    page.click("#step-2-up")
    expect(page.locator("fieldset.step legend")).to_have_text(
        ["Step 1 · Email", "Step 2 · Email", "Step 3 · Wait", "Step 4 · Wait"]
    )
    assert page.evaluate("document.activeElement.id") == "step-1-up"
    page.click("#step-1-down")
    page.click("button[aria-label='Delete step 4']")
    expect(page.locator("fieldset.step")).to_have_count(3)
    expect(page.locator("#step-2 .rendered-subject")).to_have_text("Following up")
    check_widths(app, "new sequence form")
    page.click("#save-sequence")

    expect(page.locator(".notice.ok")).to_contain_text("Created Outbound Q4.")
    expect(page.locator("h1")).to_contain_text("Outbound Q4")
    expect(page.locator("h1 .badge")).to_have_text("active")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Hi {{ person.first_name }}")
    expect(rows.nth(1)).to_contain_text("wait 2 days")
    expect(rows.nth(2)).to_contain_text("Following up")
    check_widths(app, "sequence created")

    # Edit: another ruleset and the audience; a template error stops the save at its step.
    page.click("text=Edit")
    expect(page.locator("#name")).to_have_value("Outbound Q4")
    page.select_option("#ruleset", "Careful")
    page.select_option("#audience", "CTOs")
    page.fill("#step-2-first", "Following up {{ person.first_name ")
    page.click("#save-sequence")
    step_error = page.locator("#step-2-error")
    expect(step_error).to_contain_text("subject template: line 1")
    expect(page.locator(".notice.error").first).to_contain_text("Step 3 needs a fix")
    expect(page.locator("#ruleset")).to_have_value("Careful")
    check_widths(app, "edit sequence with a template error")
    with engine.connect() as db:
        seq_id = definitions.spec_by_name(db, workspace_id=world.ws, name="Outbound Q4").id
        saved = editable(db, workspace_id=world.ws, sequence_id=seq_id)
    assert saved.ruleset == "Default", "nothing saved while a step is wrong"
    page.fill("#step-2-first", "Following up, {{ person.first_name }}")
    page.locator("#step-2-first").press("Enter")  # the keyboard saves the form
    expect(page.locator(".notice.ok")).to_contain_text("Saved Outbound Q4.")
    expect(page.locator(".page-head .sub.small")).to_contain_text("Ruleset Careful · audience CTOs")
    expect(page.locator("tbody tr").nth(2)).to_contain_text("Following up, {{ person.first_name }}")

    # Pause, resume, archive: the status changes and nobody is unenrolled.
    page.click("button:has-text('Pause')")
    expect(page.locator("h1 .badge")).to_have_text("paused")
    expect(page.locator(".notice.ok")).to_contain_text("Nobody was unenrolled")
    page.click("button:has-text('Resume')")
    expect(page.locator("h1 .badge")).to_have_text("active")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Archive')")
    expect(page.locator("h1 .badge")).to_have_text("archived")
    expect(page.locator("button:has-text('Resume')")).to_have_count(0)
    with engine.connect() as db:
        saved = editable(db, workspace_id=world.ws, sequence_id=seq_id)
    assert (saved.status, saved.ruleset, saved.audience) == ("archived", "Careful", "CTOs")
    assert [s.step.kind for s in saved.steps] == ["email", "wait", "email"]
    assert saved.steps[1].step.wait_seconds == 2 * 86400
    assert errors == [], "console errors"
