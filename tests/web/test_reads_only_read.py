"""A request that only reads opens only read transactions (R34's "nothing half-written"
has a twin: nothing that reads waits behind a writer). On SQLite a write transaction
begins IMMEDIATE and takes the database's one write lock, so a page or an API GET that
opened one would wait behind every import and sync; here every GET route of the app, the
pages and the JSON API, at objects of the demo workspace, is asked, and the transactions
each request began are counted by kind."""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.db.engine import READ_ONLY
from optout.services.access import accounts
from optout.services.access.accounts import Principal, Role
from tests.test_user_text import (
    _NOT_WALKED,
    DemoWeb,
    _demo_values,
    _page_routes,
    _urls,
    demo_web,  # noqa: F401  (the fixture)
)

# GET routes that compute a what-if by writing it and rolling it back: they need the write
# lock by design, and say so here.
WHAT_IFS = frozenset({"/people/{person_id}/company/remove"})


class WriteCounter:
    """Counts the write transactions begun on an engine, per thread that began them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.writes = 0

    def __enter__(self) -> WriteCounter:
        event.listen(self.engine, "begin", self._began)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "begin", self._began)

    def _began(self, connection: Connection) -> None:
        if not connection.info.get(READ_ONLY):
            with self.lock:
                self.writes += 1


def _api_routes(app: FastAPI) -> list[str]:
    paths = []
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/") and "GET" in getattr(route, "methods", set()):
            paths.append(path)
    return paths


@pytest.fixture
def api_key(demo_web: DemoWeb) -> str:  # noqa: F811
    admin = Principal(workspace_id=demo_web.workspace_id, role=Role.ADMIN, actor="ops@example.com")
    with demo_web.web.engine.begin() as db:
        return accounts.create_api_key(
            db, principal=admin, name="reader", role="admin", now=utcnow()
        ).key


def test_R34_every_get_of_the_pages_and_the_api_opens_only_read_transactions(
    demo_web: DemoWeb,  # noqa: F811
    api_key: str,
) -> None:
    web, app = demo_web.web, demo_web.app
    with web.engine.connect() as db:
        values = _demo_values(db, demo_web.workspace_id)
        sequence = db.scalar(
            sa.select(t.sequences.c.name).where(t.sequences.c.workspace_id == demo_web.workspace_id)
        )
    with web.engine.connect() as db:
        for name, table in (
            ("enrollment_id", t.enrollments),
            ("opportunity_id", t.opportunities),
            ("mailbox_id", t.mailboxes),
        ):
            values[name] = [
                str(i)
                for i in db.scalars(
                    sa.select(table.c.id)
                    .where(table.c.workspace_id == demo_web.workspace_id)
                    .limit(2)
                )
            ]
    email = values["email"][0]
    asks = [
        (url, {})
        for route in _page_routes(app)
        if not _NOT_WALKED.search(route) and route not in WHAT_IFS
        for url in _urls(route, values)
    ]
    headers = {"Authorization": f"Bearer {api_key}"}
    query = f"?email={quote(email, safe='@')}&sequence={quote(str(sequence))}&sequence_id=1"
    asks += [(url + query, headers) for route in _api_routes(app) for url in _urls(route, values)]
    assert len(asks) > 80  # the walk found the app's routes
    # The key's first use is written down after the answer; let it land before counting.
    web.http.get("/api/v1/people", headers=headers)
    k = t.api_keys
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with web.engine.connect() as db:
            if db.scalar(sa.select(k.c.last_used_at).where(k.c.name == "reader")) is not None:
                break
        time.sleep(0.05)

    writing: dict[str, int] = {}
    answered: dict[str, int] = {}
    with WriteCounter(web.engine) as counter:
        for url, sent in asks:
            before = counter.writes
            answer = web.http.get(url, headers=sent)
            answered[url] = answer.status_code
            if counter.writes != before:
                writing[url] = counter.writes - before
    assert writing == {}, f"GET requests that began a write transaction: {writing}"
    assert sum(1 for status in answered.values() if status == 200) > 60, answered
