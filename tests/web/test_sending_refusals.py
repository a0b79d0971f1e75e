"""Bounces that refuse our own sending are shown on the dashboard (R7): which recipient,
the code, why it was read as a refusal of our side, and the server's words; nobody is
marked bounced for them."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.inbound import process_message
from optout.services.access import accounts
from tests.factories import World
from tests.inbound.helpers import CORPUS, OPTIONS, sent_world
from tests.web.conftest import Web, csrf_token_in
from tests.web.test_complaint_rates import PASSWORD


@pytest.fixture
def now() -> datetime:
    """The dashboard counts the last days by the clock, so the world lives now too."""
    return utcnow().replace(microsecond=0)


def _dashboard_section(web: Web, slug: str, user: str) -> str:
    token = csrf_token_in(web.http.get("/login").text)
    signed_in = web.http.post(
        "/login", data={"workspace": slug, "email": user, "password": PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code == 303
    page = web.http.get("/")
    assert page.status_code == 200
    assert "R7" not in page.text
    section = page.text[page.text.index('id="sending-refusals"') :]
    section = section[: section.index("</section>")]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section)))


def test_R7_dashboard_shows_mail_servers_refusing_our_sending(
    web: Web,
    engine: Engine,
    committed: Callable[[], AbstractContextManager[World]],
    now: datetime,
) -> None:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        sent_world(world)
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
        slug = world.workspace.slug
    try:
        assert "None in the last 7 days." in _dashboard_section(web, slug, user)
        with committed() as world:
            raw = (CORPUS / "sending_side" / "postfix_spamhaus_blocklist.eml").read_bytes()
            result = process_message(world.db, raw=raw, now=now, source="test", options=OPTIONS)
            assert result.outcome == "sending_refused"
        text = _dashboard_section(web, slug, user)
        assert "Mail servers refusing our sending" in text
        assert "1 refusal(s) in the last 7 days" in text
        assert re.search(
            r"Outbound ann@acme\.com 5\.7\.1 our sending server was refused \('client host",
            text,
        ), text
        assert "zen.spamhaus.org" in text
    finally:
        with engine.begin() as db:
            db.execute(t.users.delete().where(t.users.c.email == user))
