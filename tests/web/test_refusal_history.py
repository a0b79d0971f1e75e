"""A refused enrollment leaves a trace on the person's page (R35): enrolling from the
sequence's Enroll tab a person an exclusion keeps out, or one who opted out, puts a
refusal in their history naming the sequence and the rule."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.services.suppression import optouts
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"


def _history(page: str) -> str:
    """The words of the page's history section, tags dropped."""
    start = page.index('id="history"')
    end = page.find("</section>", start)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page[start:end])).split())


@pytest.fixture
def user(engine: Engine) -> Iterator[str]:
    name = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    yield name
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == name))


def test_R35_refusals_from_the_enroll_tab_show_in_the_persons_history(
    web: Web,
    committed: Callable[[], AbstractContextManager[World]],
    user: str,
    now: datetime,
) -> None:
    with committed() as world:
        ann = world.person("ann@acme.com", company="acme.com")
        olga = world.person("olga@globex.io", company="globex.io")
        world.exclusion("Current customers", "company", "company.domain in (acme.com)")
        sequence_id = world.sequence("Q4 Outbound")
        optouts.opt_out(
            world.db,
            workspace_id=world.ws,
            email="olga@globex.io",
            actor="t",
            channel="manual",
            now=now,
        )
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
    login = web.http.get("/login").text
    web.http.post(
        "/login",
        data={
            "workspace": world.workspace.slug,
            "email": user,
            "password": PASSWORD,
            "csrf_token": csrf_token_in(login),
        },
    )
    tab = web.http.get(f"/sequences/{sequence_id}/enroll").text
    done = web.http.post(
        f"/sequences/{sequence_id}/enroll",
        data={
            "mode": "list",
            "addresses": "ann@acme.com, olga@globex.io",
            "csrf_token": csrf_token_in(tab),
        },
    )
    assert done.status_code == 200, done.text
    ann_history = _history(web.http.get(f"/people/{ann}").text)
    assert "Enrollment refused" in ann_history
    assert "Current customers" in ann_history
    assert "Q4 Outbound" in ann_history
    olga_history = _history(web.http.get(f"/people/{olga}").text)
    assert "Enrollment refused" in olga_history
    assert "Opted out" in olga_history
