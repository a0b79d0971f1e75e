"""The dashboard shows every paused sender mailbox, why it paused and what waits (R40)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import pytest

from optout.clock import utcnow
from optout.services.access import accounts
from optout.services.mailboxes import sender_mailboxes
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in
from tests.web.test_complaint_rates import PASSWORD


@pytest.fixture
def now() -> datetime:
    return utcnow().replace(microsecond=0)


def test_R40_the_dashboard_lists_paused_mailboxes_with_the_reason_and_what_waits(
    web: Web, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> None:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        sequence = world.sequence()
        world.enroll(sequence, [world.person(f"p{i}@client.com") for i in range(3)])
        sender_mailboxes.pause(
            world.db,
            workspace_id=world.ws,
            address="sam@acme-sales.com",
            reason="hard bounces at 6.0% of the last 200 sends (12), above the 5.0% line",
            actor="reputation breaker",
            now=now,
        )
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
        slug = world.workspace.slug
    token = csrf_token_in(web.http.get("/login").text)
    web.http.post(
        "/login", data={"workspace": slug, "email": user, "password": PASSWORD, "csrf_token": token}
    )
    page = web.http.get("/")
    assert page.status_code == 200
    section = page.text[page.text.index('id="paused-mailboxes"') :]
    section = section[: section.index("</section>")]
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section)))
    assert "sam@acme-sales.com" in text
    assert "hard bounces at 6.0% of the last 200 sends (12), above the 5.0% line" in text
    assert re.search(r"above the 5\.0% line \S+ \d+ \d\d:\d\d UTC 3 ", text), text


def test_R40_a_sequence_page_names_its_mailboxes_and_says_which_is_paused_and_why(
    web: Web, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> None:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        sequence = world.sequence()
        sender_mailboxes.pause(
            world.db,
            workspace_id=world.ws,
            address="sam@acme-sales.com",
            reason="spam complaints at 0.5% of the last 200 sends (1), above the 0.1% line",
            actor="reputation breaker",
            now=now,
        )
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
        slug = world.workspace.slug
    token = csrf_token_in(web.http.get("/login").text)
    web.http.post(
        "/login", data={"workspace": slug, "email": user, "password": PASSWORD, "csrf_token": token}
    )
    text = html.unescape(
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", web.http.get(f"/sequences/{sequence}").text))
    )
    assert "from sam@acme-sales.com ·" in text
    assert (
        "sam@acme-sales.com is paused (spam complaints at 0.5% of the last 200 sends (1), above "
        "the 0.1% line): its emails wait until an admin resumes it." in text
    )
