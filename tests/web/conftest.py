"""The web app over the real HTTP stack: uvicorn on a free local port, httpx as the client.

The app reads through its own connections, so test data is committed (not the
rolled-back `db` fixture), in a workspace of its own that is deleted afterwards.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.mail.tokens import UnsubscribeTokens
from optout.web.app import create_app
from optout.web.clients import server_config
from tests.factories import World

KEYS = ("web-test-secret-key-0123456789",)


def csrf_token_in(page: str) -> str:
    """The CSRF token of the first form of a page, as a browser would post it back."""
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


# One app per settings over a session's shared database, in this process (one xdist
# worker): an app builds the handlers of its 300-odd routes on its first request, about
# 0.6 s of CPU, which the 400-odd tests that serve one over `engine` paid each. Each test
# still serves it under a uvicorn of its own, so the app's lifespan (its job runner and
# unsubscribe spool threads) starts and stops with the test as before. Only for the
# session's `engine`: an app over a test's `fresh_engine` would outlive its database.
_SHARED_APPS: dict[tuple[Settings, Engine], FastAPI] = {}


def shared_app(settings: Settings, engine: Engine) -> FastAPI:
    """`create_app(settings, engine)`, made once per process for the session's `engine`."""
    key = (settings, engine)
    if key not in _SHARED_APPS:
        _SHARED_APPS[key] = create_app(settings, engine)
    return _SHARED_APPS[key]


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn in a background thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Web:
    engine: Engine
    tokens: UnsubscribeTokens
    http: httpx.Client

    def link(self, world: World, person_id: int, email: str) -> str:
        token = self.tokens.issue(workspace_id=world.ws, person_id=person_id, email=email)
        return f"/u/{token}"


def forget_sign_in_attempts(engine: Engine) -> None:
    """Every test signs in from 127.0.0.1: its failures must not lock out the next test."""
    with engine.begin() as db:
        db.execute(t.login_attempts.delete())


@contextmanager
def web_client(
    engine: Engine, keys: tuple[str, ...] = KEYS, *, shared: bool = False, **options: Any
) -> Iterator[Web]:
    """The app over `engine`; `options` are further `Settings` (proxies, https). With
    `shared`, for the session's `engine` only, the process's app for those settings."""
    settings = Settings(database_url="unused://", secret_keys=keys, **options)
    app = shared_app(settings, engine) if shared else create_app(settings, engine)
    try:
        with (
            serving(app) as base,
            httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http,
        ):
            yield Web(engine, UnsubscribeTokens(keys), http)
    finally:
        forget_sign_in_attempts(engine)


@pytest.fixture
def web(engine: Engine) -> Iterator[Web]:
    with web_client(engine, shared=True) as client:
        yield client


@pytest.fixture
def committed(
    engine: Engine, now: datetime
) -> Iterator[Callable[[], AbstractContextManager[World]]]:
    """`committed()` opens a World whose data is committed when the `with` block ends;
    every workspace made this way is deleted after the test."""
    slugs: list[str] = []

    @contextmanager
    def build() -> Iterator[World]:
        slug = f"web-{uuid.uuid4().hex[:12]}"
        slugs.append(slug)
        with engine.begin() as db:
            yield World(db, now, slug=slug)

    yield build
    with engine.begin() as db:
        db.execute(t.workspaces.delete().where(t.workspaces.c.slug.in_(slugs)))
