"""The in-doubt page in a browser: an email whose server answer was lost is listed with
why; "Send again" delivers it with the same Message-ID, "Cancel" cancels it and the page
says so; the dashboard counts them (R35: each decision is in the history)."""

from __future__ import annotations

import email
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from email import policy

import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.services.sequences import definitions
from tests.browser.conftest import App
from tests.browser.page_checks import check_widths
from tests.factories import World
from tests.sending.lost_answers import worker_pass
from tests.sending.smtp_server import DroppingAfterData, smtp_server

STEPS = (definitions.Step(kind="email", subject="Hello {{ person.first_name }}", body_text="Hi"),)


def _message_ids(handler: DroppingAfterData) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for received in handler.received:
        parsed = email.message_from_bytes(received.content, policy=policy.default)
        found.setdefault(received.recipients[0], []).append(str(parsed["Message-ID"]))
    return found


def _statuses(engine: Engine, workspace_id: int) -> dict[str, str]:
    o, p = t.outbound_emails, t.people
    with engine.connect() as db:
        rows = db.execute(
            sa.select(p.c.email, o.c.status)
            .join(p, p.c.id == o.c.person_id)
            .where(o.c.workspace_id == workspace_id)
        ).all()
    return {row.email: row.status for row in rows}


def test_R35_in_doubt_emails_are_listed_released_with_their_message_id_or_cancelled(
    engine: Engine,
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        ann = world.person("ann@acme.com", first_name="Ann")
        ben = world.person("ben@acme.com", first_name="Ben")
        world.enroll(world.sequence("Outbound", steps=STEPS), [ann, ben])
    handler = DroppingAfterData(times=2)  # the server keeps both, but answers neither
    with smtp_server(handler) as port:
        worker_pass(engine, port, utcnow())
        assert _statuses(engine, world.ws) == {
            "ann@acme.com": "in_doubt",
            "ben@acme.com": "in_doubt",
        }
        first = _message_ids(handler)

        app = open_app(world)
        page = app.page
        app.sign_in()
        dashboard = app.visit("/", "dashboard with emails in doubt")
        expect(dashboard.locator("#stat-in-doubt .value")).to_have_text("2")
        dashboard.click("#stat-in-doubt a")
        expect(page.locator("h1")).to_have_text("Emails in doubt")
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(2)
        ann_row = rows.filter(has_text="ann@acme.com")
        expect(ann_row).to_contain_text("may or may not have been delivered")
        expect(ann_row).to_contain_text(first["ann@acme.com"][0])
        check_widths(app, "in-doubt list")

        ann_row.locator("button:has-text('Send again')").click()
        expect(page.locator(".notice.ok")).to_contain_text("will be sent again")
        expect(page.locator("tbody tr")).to_have_count(1)
        worker_pass(engine, port, utcnow())
        assert _message_ids(handler)["ann@acme.com"] == first["ann@acme.com"] * 2

        page.locator("tbody tr", has_text="ben@acme.com").locator(
            "button:has-text('Cancel')"
        ).click()
        expect(page.locator(".notice.ok")).to_contain_text("is cancelled and will not be sent")
        expect(page.locator("tbody tr")).to_have_text("No emails in doubt.")
        app.shot("in-doubt list emptied")
        worker_pass(engine, port, utcnow())
    assert _statuses(engine, world.ws) == {"ann@acme.com": "sent", "ben@acme.com": "cancelled"}
    assert len(_message_ids(handler)["ben@acme.com"]) == 1  # never sent again
    expect(
        app.visit("/", "dashboard, nothing in doubt").locator("#stat-in-doubt .value")
    ).to_have_text("0")
    with engine.connect() as db:
        decided = db.execute(
            sa.select(t.events.c.kind, t.events.c.actor)
            .where(
                t.events.c.workspace_id == world.ws,
                t.events.c.kind.in_(("email_released", "email_cancelled")),
                t.events.c.at >= utcnow() - timedelta(minutes=10),
            )
            .order_by(t.events.c.id)
        ).all()
    assert [tuple(row) for row in decided] == [
        ("email_released", app.user),
        ("email_cancelled", app.user),
    ]
