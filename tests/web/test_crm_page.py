"""The CRM page over real HTTP without a browser: what it says when the server has no
OPTOUT_ENCRYPTION_KEYS, who may change or test a connection, and what a test shows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
import sqlalchemy as sa
from fastapi import Response
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.crm import connections
from optout.db import tables as t
from optout.services.access import accounts
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.rogue import Rogue
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in, serving

PASSWORD = "correct horse battery staple"
TOKEN = "pat-na1-page-test-token"


@pytest.fixture
def signed_in(
    web: Web,
    engine: Engine,
    committed: Callable[[], AbstractContextManager[World]],
    now: datetime,
) -> Iterator[Callable[[str], World]]:
    """`signed_in(role)`: a committed workspace and a user of that role signed in to it."""
    users: list[str] = []

    def sign_in(role: str) -> World:
        user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
        users.append(user)
        with committed() as world:
            accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
            accounts.set_member(world.db, workspace_id=world.ws, email=user, role=role)
        form = web.http.get("/login").text
        web.http.post(
            "/login",
            data={
                "workspace": world.workspace.slug,
                "email": user,
                "password": PASSWORD,
                "csrf_token": csrf_token_in(form),
            },
        )
        return world

    yield sign_in
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email.in_(users)))


def _connections(engine: Engine, ws: int) -> int:
    c = t.crm_connections
    with engine.connect() as db:
        return int(db.scalar(sa.select(sa.func.count()).where(c.c.workspace_id == ws)) or 0)


def test_R34_without_encryption_keys_the_page_says_what_to_set_and_saves_nothing(
    web: Web, signed_in: Callable[[str], World], engine: Engine
) -> None:
    world = signed_in("admin")
    form = web.http.get("/crm/hubspot")
    assert form.status_code == 200
    assert "set OPTOUT_ENCRYPTION_KEYS" in form.text

    saved = web.http.post(
        "/crm/hubspot",
        data={
            "csrf_token": csrf_token_in(form.text),
            "base_url": "https://api.hubapi.com",
            "token": TOKEN,
        },
    )

    assert saved.status_code == 422
    assert "storing secrets needs OPTOUT_ENCRYPTION_KEYS" in saved.text
    assert TOKEN not in saved.text
    assert _connections(engine, world.ws) == 0  # the connection was not half-made


def test_only_an_admin_changes_a_crm_connection(
    web: Web, signed_in: Callable[[str], World], engine: Engine
) -> None:
    world = signed_in("member")
    form = web.http.get("/crm/salesforce")
    assert "Only an admin of the workspace can change the connection" in form.text

    refused = web.http.post(
        "/crm/salesforce",
        data={"csrf_token": csrf_token_in(form.text), "base_url": "https://acme.my.salesforce.com"},
    )

    assert refused.status_code == 403
    assert _connections(engine, world.ws) == 0
    assert web.http.get("/crm/pipedrive").status_code == 404


def _connect_to(engine: Engine, ws: int, url: str) -> None:
    with engine.begin() as db:
        connections.connect(
            db,
            workspace_id=ws,
            kind="hubspot",
            base_url=url,
            secrets={"token": "OPTOUT_TEST_PAGE_TOKEN"},
            now=utcnow(),
        )


def test_R34_only_an_admin_may_test_a_crm_connection(
    web: Web,
    signed_in: Callable[[str], World],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTOUT_TEST_PAGE_TOKEN", TOKEN)
    monkeypatch.setenv("OPTOUT_CRM_ALLOWED_HOSTS", "127.0.0.1")
    crm = Rogue(answer=lambda _r: Response("{}", media_type="application/json"))
    with serving(crm.app) as url:
        world = signed_in("member")
        _connect_to(engine, world.ws, url)
        page = web.http.get("/crm/hubspot")
        refused = web.http.post("/crm/hubspot/test", data={"csrf_token": csrf_token_in(page.text)})

    assert refused.status_code == 403
    assert "this needs an admin of the workspace" in refused.text
    assert crm.hits == []


def test_R34_the_connection_test_shows_the_crm_status_in_words_never_its_body(
    web: Web,
    signed_in: Callable[[str], World],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTOUT_TEST_PAGE_TOKEN", TOKEN)
    monkeypatch.setenv("OPTOUT_CRM_ALLOWED_HOSTS", "127.0.0.1")
    crm = Rogue(answer=lambda _r: Response("root:x:0:0:INTERNAL-ONLY", status_code=403))
    with serving(crm.app) as url:
        world = signed_in("admin")
        _connect_to(engine, world.ws, url)
        page = web.http.get("/crm/hubspot")
        tested = web.http.post("/crm/hubspot/test", data={"csrf_token": csrf_token_in(page.text)})
        monkeypatch.delenv("OPTOUT_CRM_ALLOWED_HOSTS")
        local = web.http.post("/crm/hubspot/test", data={"csrf_token": csrf_token_in(page.text)})

    assert tested.status_code == 200
    assert "HubSpot answered HTTP 403: the credentials may not do this" in tested.text
    assert "INTERNAL-ONLY" not in tested.text
    assert "does not send requests to 127.0.0.1" in local.text
    assert crm.hits == ["POST /crm/v3/objects/contacts/search"]  # the first test only


def test_R32_sync_now_answers_at_once_and_the_page_follows_the_background_job(
    web: Web,
    signed_in: Callable[[str], World],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTOUT_TEST_PAGE_TOKEN", TOKEN)
    monkeypatch.setenv("OPTOUT_CRM_ALLOWED_HOSTS", "127.0.0.1")
    emulator = HubSpot(token=TOKEN, clock=FakeClock())
    emulator.contact("ann@acme.com", firstname="Ann")
    with serving(emulator.app) as url:
        world = signed_in("admin")
        _connect_to(engine, world.ws, url)
        page = web.http.get("/crm/hubspot")
        asked = web.http.post("/crm/hubspot/sync", data={"csrf_token": csrf_token_in(page.text)})
        assert asked.status_code == 303
        location = asked.headers["location"]
        assert location.startswith("/crm/hubspot?job=")
        job_id = int(location.split("=", 1)[1])
        following = web.http.get(location).text
        assert f'hx-get="/crm/hubspot/sync-panel?job={job_id}"' in following
        deadline = time.monotonic() + 60
        polled = f"/crm/hubspot/sync-panel?job={job_id}"
        while "sync-outcome" not in (panel := web.http.get(polled).text):
            assert time.monotonic() < deadline, "the sync job did not end"
            time.sleep(0.2)
        job_page = web.http.get(f"/jobs/{job_id}").text

    assert "Synced: read 1 records, created 1, updated 0, opted out 0." in panel
    assert 'hx-swap-oob="true"' in panel
    assert ">connected</span>" in panel
    assert "hx-get" not in panel.split("<h2>", 1)[0]  # done: the panel stops polling
    assert "Synced: read 1 records" in job_page
    assert 'href="/crm/hubspot"' in job_page
