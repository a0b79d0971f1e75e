"""Editing and removing a mailbox in a browser: an admin lowers a mailbox's daily limit
on its edit page, then removes a mailbox that enrollments in progress send from,
choosing the mailbox they go to; every one of them then sends from it (R37)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.services.mailboxes import sender_mailboxes
from tests.browser.conftest import App
from tests.browser.page_checks import check_page, console_errors
from tests.factories import World

PEOPLE = [f"lead{i}@client{i}.com" for i in range(5)]


def _senders(engine: Engine, workspace_id: int) -> dict[str, str | None]:
    e, p, b = t.enrollments, t.people, t.mailboxes
    with engine.connect() as db:
        return {
            r.email: r.address
            for r in db.execute(
                sa.select(p.c.email, b.c.address)
                .join(e, e.c.person_id == p.c.id)
                .outerjoin(b, b.c.id == e.c.mailbox_id)
                .where(e.c.workspace_id == workspace_id, e.c.status.in_(t.ACTIVE_STATUSES))
            )
        }


def test_R37_an_admin_edits_a_mailbox_s_limit_and_removes_one_choosing_where_its_people_go(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        admin = f"ops-{world.workspace.slug}@example.com"
        accounts.set_member(world.db, workspace_id=world.ws, email=admin, role="admin")
        sequence = world.sequence("Heads outreach")
        made = {
            address: sender_mailboxes.create(
                world.db, workspace_id=world.ws, address=address, actor=admin, now=world.now
            ).id
            for address in ("ann@acme-sales.com", "bob@acme-sales.com", "cy@acme-sales.com")
        }
        sender_mailboxes.attach(
            world.db,
            sequence_id=sequence,
            mailbox_ids=[made["ann@acme-sales.com"], made["bob@acme-sales.com"]],
        )
        world.enroll(sequence, [world.person(a) for a in PEOPLE])
        e = t.enrollments
        world.db.execute(
            e.update()
            .where(e.c.sequence_id == sequence)
            .values(mailbox_id=made["ann@acme-sales.com"])
        )
        ws = world.ws
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    app.sign_in()

    # 1. Ann's mailbox sends at most 12 a day from now on.
    page.click("nav.sidebar >> text=Mailboxes")
    page.click("a[aria-label='Edit ann@acme-sales.com']")
    expect(page.locator("h1")).to_have_text("Edit ann@acme-sales.com")
    expect(page.locator("#daily_limit")).to_have_value(str(sender_mailboxes.DEFAULT_DAILY_LIMIT))
    page.fill("#daily_limit", "twelve")
    page.click("button:has-text('Save mailbox')")
    expect(page.locator("#daily_limit-error")).to_contain_text("'twelve' is not a whole number")
    expect(page.locator("#daily_limit")).to_have_value("twelve")
    check_page(app, "a refused limit")
    page.fill("#daily_limit", "12")
    page.click("button:has-text('Save mailbox')")
    expect(page.locator(".notice.ok")).to_contain_text("Saved ann@acme-sales.com.")
    expect(page.locator("tr[data-mailbox='ann@acme-sales.com']")).to_contain_text("0 of 12")

    # 2. Removing Ann's mailbox asks where her 5 people go; they go to Cy's.
    page.click("a[aria-label='Remove ann@acme-sales.com']")
    expect(page.locator("#mailbox-remove")).to_contain_text(
        "5 enrollment(s) in progress send from ann@acme-sales.com"
    )
    expect(page.locator("#mailbox-remove")).to_contain_text("bob@acme-sales.com — already sends")
    check_page(app, "where do they go")
    page.check("input[name=move_to][value='cy@acme-sales.com']")
    page.click("button:has-text('Remove ann@acme-sales.com')")
    expect(page.locator(".notice.ok")).to_contain_text(
        "Removed ann@acme-sales.com; 5 enrollment(s) now send from cy@acme-sales.com."
    )
    expect(page.locator("tr[data-mailbox='ann@acme-sales.com']")).to_have_count(0)
    expect(page.locator("tr[data-mailbox='cy@acme-sales.com']")).to_contain_text("Heads outreach")
    assert _senders(engine, ws) == dict.fromkeys(PEOPLE, "cy@acme-sales.com")
    assert errors == []
