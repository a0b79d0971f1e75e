"""A person's page shows a spam complaint: a badge, when and what reported it, the CRM
write-back, the ledger line in words, and the explain panel's first check (R29, R36)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.services.suppression import optouts
from tests.factories import World
from tests.web.conftest import Web

PASSWORD = "correct horse battery staple"


def _words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _sign_in(web: Web, world: World, user: str) -> None:
    login = web.http.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token is not None
    data = {"workspace": world.workspace.slug, "email": user, "password": PASSWORD}
    answer = web.http.post("/login", data={**data, "csrf_token": token.group(1)})
    assert answer.status_code == 303, answer.text


def test_R36_the_person_page_shows_the_spam_complaint_and_explain_puts_it_first(
    engine: Engine, committed: Callable[[], AbstractContextManager[World]], web: Web, now: datetime
) -> None:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        ann = world.person("ann@acme.com")
        world.sequence("Outbound")
        optouts.complain(
            world.db,
            workspace_id=world.ws,
            email="ann@acme.com",
            actor="feedback-loop",
            now=now,
            reporting_domain="fbl.mail.example",
        )
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
    try:
        _sign_in(web, world, user)
        page = web.http.get(f"/people/{ann}")
        explain = web.http.get(
            f"/people/{ann}/explain", params={"sequence": "Outbound", "purpose": "send"}
        )
    finally:
        with engine.begin() as db:
            db.execute(t.users.delete().where(t.users.c.email == user))

    assert page.status_code == 200, page.text
    words = _words(page.text)
    assert '<span class="badge complained">spam complaint</span>' in page.text
    assert "Reported our email as spam on" in words
    assert "abuse report from fbl.mail.example" in words
    assert "CRM: Waiting for the next CRM sync" in words
    assert "added spam complaint feedback-loop" in words.lower()
    assert explain.status_code == 200, explain.text
    said = _words(explain.text)
    assert said.index("Spam complaint") < said.index("Hard bounce") < said.index("Opted out")
    assert "sent a spam complaint on" in said
