"""The review queue in a browser: a flagged unsubscribe reply opted out in one click, an
unmatched message attached to a person, another dismissed; each decision listed with
who took it (R4, R2, R35)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.inbound import process_message
from tests.browser.conftest import App
from tests.browser.page_checks import check_widths, console_errors
from tests.factories import World
from tests.inbound.helpers import OPTIONS, reply, sent_world


def test_R4_review_queue_opt_out_attach_and_dismiss(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        s = sent_world(world)
        world.db.execute(
            t.workspaces.update()
            .where(t.workspaces.c.id == s.ws)
            .values(auto_opt_out_on_unsubscribe_reply=False)
        )
        for raw in (
            reply(
                sender="ann@acme.com",
                body="Please take me off this list.",
                subject="Re: Quick question",
                in_reply_to=s.message_ids["ann"],
            ),
            reply(
                sender="ben.home@gmail.com",
                body="Writing from home: tell me more.",
                subject="From home",
            ),
            reply(sender="promo@spam.example", body="Cheap watches", subject="Offer"),
        ):
            process_message(
                world.db,
                raw=raw,
                now=world.now + timedelta(hours=1),
                source="test",
                workspace_id=s.ws,
                options=OPTIONS,
            )
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    app.sign_in()
    app.visit("/review", "review queue")
    items = page.locator("article.review-item")
    expect(items).to_have_count(3)
    expect(page.locator(".page-head")).to_contain_text("3 waiting")
    first = items.nth(0)
    expect(first).to_contain_text("asked to unsubscribe; automatic opt-out is off")
    expect(first.locator("blockquote")).to_contain_text("Please take me off this list.")
    expect(items.nth(1)).to_contain_text("matched no enrollment")
    check_widths(app, "review queue")

    first.locator("button:has-text('Opt out ann@acme.com')").click()
    expect(page.locator(".notice.ok")).to_contain_text("ann@acme.com is opted out")
    expect(items).to_have_count(2)

    home = page.locator("article.review-item", has_text="From home")
    home.locator("input[name=email]").fill("ben@acme.com")
    home.locator("button:has-text('Attach')").click()
    expect(page.locator(".notice.ok")).to_contain_text("Attached to ben@acme.com")

    page.locator("article.review-item", has_text="Offer").locator("text=Dismiss").click()
    expect(page.locator(".notice.ok")).to_contain_text("Dismissed")
    expect(page.locator("#queue-empty")).to_be_visible()

    decided = page.locator("#decided tbody tr")
    expect(decided).to_have_count(3)
    expect(page.locator("#decided")).to_contain_text(app.user)
    for label in ("Opted out", "Attached to a person", "Dismissed"):
        expect(page.locator("#decided")).to_contain_text(label)
    expect(decided.filter(has_text="From home")).to_contain_text("ben@acme.com")
    app.shot("all decided")

    x = t.suppressions
    with engine.connect() as db:
        suppressed = set(db.scalars(sa.select(x.c.email).where(x.c.workspace_id == s.ws)))
    assert suppressed == {"ann@acme.com"}
    assert errors == []
