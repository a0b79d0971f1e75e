"""The mailboxes' capacity page (R37, R40): each mailbox's sends today against its limit,
what is queued for it, whether it is paused, and the day its queue will have drained at
these limits, with a workspace total; linked from the mailboxes page and the dashboard."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.services.access import accounts
from optout.services.mailboxes import sender_mailboxes
from tests.factories import World
from tests.sending.drain_world import ANN, BOB, expected_days, two_mailboxes
from tests.web.conftest import Web, csrf_token_in
from tests.web.test_complaint_rates import PASSWORD


@pytest.fixture
def now() -> datetime:
    return utcnow().replace(microsecond=0) - timedelta(minutes=1)


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


def _row(page: str, marker: str) -> str:
    return _text(page[page.index(marker) :].split("</tr>")[0].split(">", 1)[1])


def test_R37_the_capacity_page_shows_sends_today_queue_and_drain_day_per_mailbox(
    web: Web,
    committed: Callable[[], AbstractContextManager[World]],
    engine: Engine,
    now: datetime,
) -> None:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        two_mailboxes(world)
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
        slug, ws = world.workspace.slug, world.ws
    token = csrf_token_in(web.http.get("/login").text)
    web.http.post(
        "/login", data={"workspace": slug, "email": user, "password": PASSWORD, "csrf_token": token}
    )
    assert 'href="/mailboxes/capacity"' in web.http.get("/").text
    assert 'href="/mailboxes/capacity"' in web.http.get("/mailboxes").text

    response = web.http.get("/mailboxes/capacity")
    assert response.status_code == 200
    page = response.text
    ann_day, bob_day = expected_days(now)
    ann = _row(page, f'data-mailbox="{ANN}"')
    assert ann.startswith(f"Ann Lee {ANN} 2 of 3 on ")
    assert "in Europe/Berlin 7 " in ann
    assert ann_day in ann
    assert "3 a day (its daily limit), every day, counted in Europe/Berlin" in ann
    bob = _row(page, f'data-mailbox="{BOB}"')
    assert bob.startswith(f"{BOB} 0 of 5 on ")
    assert "in UTC 5 " in bob
    assert bob_day in bob
    assert (
        "4 a day (one email every 7200 s on average, over 8 hours of sending), every day, "
        "counted in UTC" in bob
    )
    total = _row(page, 'id="capacity-total"')
    assert total.startswith("All 2 mailboxes 2 of 8 12 ")
    assert "none paused" in total
    assert max(ann_day, bob_day, key=lambda d: datetime.strptime(d[11:], "%a %d %b %Y")) in total

    with engine.begin() as db:
        sender_mailboxes.pause(
            db,
            workspace_id=ws,
            address=ANN,
            reason="hard bounces above the line",
            actor="reputation breaker",
            now=now,
        )
    page = web.http.get("/mailboxes/capacity").text
    ann = _row(page, f'data-mailbox="{ANN}"')
    assert "paused hard bounces above the line not while it is paused" in ann
    total = _row(page, 'id="capacity-total"')
    assert "1 paused" in total
    assert bob_day in total
    assert "7 wait on paused mailboxes until they are resumed" in total
