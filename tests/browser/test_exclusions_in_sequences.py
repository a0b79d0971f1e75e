"""Where a rule applies, in the browser, on the demo workspace: the exclusion page, the
audience page, the dashboard and the ruleset editor say which sequences bypass a rule
(the Webinar Follow-up runs on a ruleset with exclusions off), and what they claim for
each sequence is what explain decides for a current customer there (R16, R29, R30).
Turning exclusions off in a ruleset that sequences use asks first, naming the rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.demo.build import Story, build, wipe
from optout.demo.setup import CUSTOMERS, ENGINEERING, OUTBOUND, PEOPLE_INTRO, WEBINAR
from optout.services.access import accounts
from tests.browser.conftest import PASSWORD, App
from tests.browser.page_checks import check_page


@dataclass(frozen=True)
class _Workspace:
    slug: str


@dataclass(frozen=True)
class Demo:
    """What `open_app` needs of a world (its workspace's slug), and the demo's story."""

    workspace: _Workspace
    story: Story
    ids: dict[str, int]


@pytest.fixture
def demo(engine: Engine) -> Iterator[Demo]:
    """The demo workspace, built through the services, with an admin user."""
    slug = f"browser-demo-{uuid.uuid4().hex[:8]}"
    user = f"ops-{slug}@example.com"
    with engine.begin() as db:
        story = build(db, slug=slug, now=utcnow(), seed=7, actor="demo@optout")
        accounts.create_user(db, email=user, name="Ops", password=PASSWORD, now=utcnow())
        accounts.set_member(db, workspace_id=story.workspace_id, email=user, role="admin")
        ids = _ids(db, story)
    yield Demo(_Workspace(slug), story, ids)
    with engine.begin() as db:
        wipe(db, slug=slug)
        db.execute(t.users.delete().where(t.users.c.email == user))


def _ids(db: Any, story: Story) -> dict[str, int]:
    ws = story.workspace_id
    found = {}
    for table, name in (
        (t.exclusions, CUSTOMERS),
        (t.audiences, ENGINEERING),
        (t.rulesets, "Standard, 7-day cooldown"),
    ):
        found[name] = db.scalar(
            sa.select(table.c.id).where(table.c.workspace_id == ws, table.c.name == name)
        )
    found["customer"] = db.scalar(
        sa.select(t.people.c.id).where(
            t.people.c.workspace_id == ws, t.people.c.email == story.customer
        )
    )
    return found


def _claims(app: App) -> dict[str, str]:
    """Sequence name to what the exclusion page claims there: yes, no, or manual."""
    rows = app.page.locator("#rule-reach tr[data-sequence]")
    expect(rows.first).to_be_visible()
    return {
        str(row.get_attribute("data-sequence")): str(row.get_attribute("data-applies"))
        for row in rows.all()
    }


def _explain_agrees(app: App, person_id: int, claims: dict[str, str]) -> None:
    """For each sequence, explain for the customer (enrolled by hand) blocks on the rule
    exactly where the page says the rule applies."""
    page = app.visit(f"/people/{person_id}", "customer's page")
    for sequence, applies in claims.items():
        page.select_option("#explain-sequence", sequence)
        page.select_option("select[name=how]", "manual")
        verdict = page.locator("#explain .verdict")
        expect(verdict).to_contain_text(f"be enrolled in “{sequence}” now (as a manual")
        blocking = page.locator("#explain tbody tr.blocking, #explain tbody tr.highlight")
        if applies == "no":
            expect(blocking.filter(has_text=CUSTOMERS)).to_have_count(0)
            expect(page.locator("#explain-bypass")).to_contain_text(CUSTOMERS)
            expect(verdict).to_contain_text("ALLOWED")
        else:
            expect(blocking.filter(has_text=CUSTOMERS)).to_have_count(1)
            expect(verdict).to_contain_text("BLOCKED")
        app.shot(f"explain in {sequence}")


def test_R16_R29_R30_pages_say_where_a_rule_applies_as_explain_decides(
    demo: Demo, open_app: Callable[[Any], App]
) -> None:
    app = open_app(demo)
    page = app.page
    app.sign_in()
    customer = demo.ids["customer"]
    assert demo.story.customer == "daniel.rossi@acme.com"

    # The exclusion page: every sequence, and the one that bypasses the rule.
    app.visit(f"/exclusions/{demo.ids[CUSTOMERS]}", "current customers")
    summary = page.locator("#rule-reach-summary")
    expect(summary).to_contain_text(f"but not in {WEBINAR}")
    expect(summary).to_contain_text("ignores every exclusion")
    claims = _claims(app)
    assert claims == {OUTBOUND: "yes", PEOPLE_INTRO: "yes", WEBINAR: "no"}
    check_page(app, "where current customers applies")
    _explain_agrees(app, customer, claims)

    # The audience page no longer says "every sequence" bare.
    app.visit(f"/audiences/{demo.ids[ENGINEERING]}", "engineering leaders")
    row = page.locator("tr", has=page.locator(f"a:text-is('{CUSTOMERS}')"))
    expect(row).to_contain_text(f"but not in {WEBINAR}")
    expect(row).not_to_contain_text("applies to every sequence")

    # The list of exclusions and the dashboard name the bypassing sequence too.
    app.visit("/exclusions", "exclusions")
    expect(page.locator("#exclusions tr", has_text=CUSTOMERS)).to_contain_text(f"not in {WEBINAR}")
    app.visit("/", "dashboard")
    expect(page.locator("#exclusions-off")).to_contain_text(WEBINAR)
    expect(page.locator("#exclusions-off")).not_to_contain_text(OUTBOUND)

    # Turning exclusions off in Q4 Outbound's ruleset asks first, naming what stops.
    ruleset = f"/rulesets/{demo.ids['Standard, 7-day cooldown']}"
    app.visit(ruleset, "standard ruleset")
    page.uncheck("#exclusions_enabled")
    page.click("#save-ruleset")
    confirmation = page.locator("#confirmation")
    expect(confirmation).to_contain_text(f"makes {OUTBOUND} ignore every exclusion")
    expect(confirmation).to_contain_text(f"'{CUSTOMERS}' (set to apply in every sequence) covers")
    check_page(app, "turning exclusions off asks first")
    app.visit(ruleset, "standard ruleset, not saved")
    expect(page.locator("#exclusions_enabled")).to_be_checked()
    app.visit(f"/exclusions/{demo.ids[CUSTOMERS]}", "current customers, unchanged")
    assert _claims(app)[OUTBOUND] == "yes"

    app.visit(ruleset, "standard ruleset again")
    page.uncheck("#exclusions_enabled")
    page.click("#save-ruleset")
    page.click("#confirm-ruleset")
    expect(page.locator(".notice.ok")).to_contain_text("Saved")
    expect(page.locator("#ruleset-bypass")).to_contain_text(CUSTOMERS)
    expect(page.locator("#exclusions_enabled")).not_to_be_checked()

    # Now the pages and explain agree on the new state, sequence by sequence.
    app.visit(f"/exclusions/{demo.ids[CUSTOMERS]}", "current customers after the change")
    claims = _claims(app)
    assert claims == {OUTBOUND: "no", PEOPLE_INTRO: "yes", WEBINAR: "no"}
    _explain_agrees(app, customer, claims)
    app.visit("/", "dashboard after the change")
    expect(page.locator("#exclusions-off")).to_contain_text(OUTBOUND)
