"""Read-only answers do not wait for a writer to commit: on SQLite they read a snapshot
instead of queueing for the write lock the worker and every opt-out take (R3, R29)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import httpx
import sqlalchemy as sa

from optout.db import tables as t
from optout.mail.tokens import UnsubscribeTokens
from tests.factories import World
from tests.web.api.conftest import Api
from tests.web.conftest import KEYS

Committed = Callable[[], AbstractContextManager[World]]


def test_R29_R3_explain_and_the_confirm_page_answer_while_a_writer_holds_its_transaction(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
        outbound = world.sequence()
        world.enroll(outbound, [anna])
        keys = api.keys(world)
    http = api.client(keys.member)
    token = UnsubscribeTokens(KEYS).issue(
        workspace_id=world.ws, person_id=anna, email="anna@acme.com"
    )
    question = {"email": "anna@acme.com", "sequence_id": outbound, "purpose": "send"}
    # The writer keeps its transaction open far longer than the clients wait for answers.
    with api.engine.begin() as writer:
        writer.execute(t.people.update().where(t.people.c.id == anna).values(title="Writing"))
        explained = http.get("/explain", params=question, timeout=10)
        page = httpx.get(f"{api.base}/u/{token}", timeout=10)
    assert explained.status_code == 200
    assert explained.json()["allowed"] is True
    assert page.status_code == 200
    assert "a***@acme.com" in page.text


def test_an_api_keys_use_is_recorded_after_the_answer(api: Api, committed: Committed) -> None:
    with committed() as world:
        world.person("anna@acme.com")
        keys = api.keys(world)
    k = t.api_keys

    def last_used(key_id: int) -> datetime | None:
        with api.engine.connect() as db:
            return db.scalar(sa.select(k.c.last_used_at).where(k.c.id == key_id))

    assert api.client(keys.member).get("/people", params={"email": "anna@acme.com"}).is_success
    deadline = time.monotonic() + 10  # it is written just after the response went out
    while last_used(keys.member_id) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert last_used(keys.member_id) is not None
    assert last_used(keys.admin_id) is None
