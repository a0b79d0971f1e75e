"""A page's notice ("Opted out ...", "The sync failed: ...") comes from the server, never
from the address: a link with `?done=` or `?problem=` cannot put words on a page that
look like the app's own."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.web.notices import NOTICE_COOKIE
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in, web_client

PASSWORD = "correct horse battery staple"
SPOOF = "Your account is suspended. Call 555-0100 to restore it"


@pytest.fixture
def admin(
    engine: Engine, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> Iterator[tuple[World, str, dict[str, int]]]:
    """A committed workspace with one of everything a page shows, an admin's address and
    the ids of those things."""
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        ids = {"person": world.person("ann@acme.com", company="acme.com", title="CTO")}
        persona = world.persona("Technical", include=["cto"])
        ids["audience"] = world.audience("Technical buyers", persona=persona)
        ruleset = world.ruleset("Careful")
        ids["sequence"] = world.sequence("Outbound", ruleset=ruleset)
        ids["persona"] = world.db.scalar(
            sa.select(t.personas.c.id).where(
                t.personas.c.workspace_id == world.ws, t.personas.c.name == persona
            )
        )
        ids["ruleset"] = world.db.scalar(
            sa.select(t.rulesets.c.id).where(
                t.rulesets.c.workspace_id == world.ws, t.rulesets.c.name == ruleset
            )
        )
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="admin")
    yield world, user, ids
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == user))


def _sign_in(web: Web, world: World, user: str) -> None:
    token = csrf_token_in(web.http.get("/login").text)
    form = {"workspace": world.workspace.slug, "email": user, "password": PASSWORD}
    answer = web.http.post("/login", data={**form, "csrf_token": token})
    assert answer.status_code == 303


def _notices(html: str) -> list[str]:
    return re.findall(r'<div class="notice (?:ok|error)[^"]*"[^>]*>(.*?)</div>', html, re.S)


def _opted_out_notice(html: str) -> bool:
    return any("Opted out ann@acme.com" in notice for notice in _notices(html))


def _opt_out(web: Web, person_id: int) -> str:
    """Opt the person out through the page's form; the address it leads to."""
    token = csrf_token_in(web.http.get(f"/people/{person_id}").text)
    answer = web.http.post(
        f"/people/{person_id}/opt-out", data={"reason": "asked by phone", "csrf_token": token}
    )
    assert answer.status_code == 303
    return answer.headers["location"]


def test_a_notice_in_the_address_never_shows_on_a_page(
    web: Web, admin: tuple[World, str, dict[str, int]]
) -> None:
    world, user, ids = admin
    _sign_in(web, world, user)
    pages = [
        "/exclusions",
        "/exclusions?archived=true",
        "/review",
        "/in-doubt",
        "/personas",
        f"/personas/{ids['persona']}",
        f"/rulesets/{ids['ruleset']}",
        f"/people/{ids['person']}",
        f"/audiences/{ids['audience']}",
        f"/sequences/{ids['sequence']}",
        f"/sequences/{ids['sequence']}/enrollments",
        f"/sequences/{ids['sequence']}/not-enrolled",
        "/crm/hubspot",
        "/crm/salesforce",
        "/imports",
    ]
    for path in pages:
        spoofed = f"{path}{'&' if '?' in path else '?'}" + "&".join(
            f"{name}={SPOOF.replace(' ', '+')}" for name in ("done", "problem", "error")
        )
        answer = web.http.get(spoofed)
        assert answer.status_code == 200, path
        assert "555-0100" not in answer.text, path


def test_a_notice_after_a_form_shows_once_on_the_page_it_leads_to(
    web: Web, admin: tuple[World, str, dict[str, int]]
) -> None:
    world, user, ids = admin
    _sign_in(web, world, user)
    location = _opt_out(web, ids["person"])
    assert location == f"/people/{ids['person']}"  # nothing in the address
    shown = web.http.get(location)
    assert _opted_out_notice(shown.text), shown.text
    assert not _opted_out_notice(web.http.get(location).text)  # shown once


def test_a_notice_of_another_session_or_a_forged_one_is_not_shown(
    engine: Engine, admin: tuple[World, str, dict[str, int]]
) -> None:
    world, user, ids = admin
    with web_client(engine) as mine, web_client(engine) as theirs:
        _sign_in(mine, world, user)
        _sign_in(theirs, world, user)
        _opt_out(mine, ids["person"])
        notice = mine.http.cookies[NOTICE_COOKIE]
        encoded, _, signature = notice.partition(".")
        path = f"/people/{ids['person']}"
        theirs.http.cookies.set(NOTICE_COOKIE, notice)
        assert not _opted_out_notice(theirs.http.get(path).text)  # another session's
        forged = f"{encoded[:-4]}AAAA.{signature}"
        mine.http.cookies.delete(NOTICE_COOKIE)
        mine.http.cookies.set(NOTICE_COOKIE, forged)
        assert not _opted_out_notice(mine.http.get(path).text)
        mine.http.cookies.delete(NOTICE_COOKIE)
        mine.http.cookies.set(NOTICE_COOKIE, notice)
        assert _opted_out_notice(mine.http.get(path).text)  # the genuine one, unchanged
