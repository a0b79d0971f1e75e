"""The JSON API over real HTTP: uvicorn on a free port, httpx clients with real API keys.

Test data is committed in a workspace of its own (`committed()`, deleted afterwards);
`api.keys(world)` makes an admin and a member key for it in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.services.access import accounts
from optout.services.access.accounts import Principal, Role
from optout.web.app import create_app
from tests.factories import World
from tests.web.conftest import KEYS, serving, shared_app

API = "/api/v1"


@dataclass(frozen=True)
class Keys:
    admin: str
    member: str
    admin_id: int
    member_id: int


@dataclass
class Api:
    base: str
    engine: Engine
    _clients: list[httpx.Client] = field(default_factory=list)

    def keys(self, world: World) -> Keys:
        """An admin and a member API key of the world's workspace."""
        boss = Principal(workspace_id=world.ws, role=Role.ADMIN, actor="test-setup")
        admin = accounts.create_api_key(
            world.db, principal=boss, name="admin key", role=Role.ADMIN, now=world.now
        )
        member = accounts.create_api_key(
            world.db, principal=boss, name="member key", role=Role.MEMBER, now=world.now
        )
        return Keys(admin.key, member.key, admin.id, member.id)

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        """A client for `/api/v1` that sends `key` as its Bearer token."""
        sent = dict(headers)
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        client = httpx.Client(base_url=f"{self.base}{API}", headers=sent, timeout=30)
        self._clients.append(client)
        return client


def serve_api(engine: Engine, *, shared: bool = False) -> Any:
    """The app over `engine` under uvicorn; with `shared`, for the session's `engine` only,
    the process's app (`tests.web.conftest.shared_app`)."""
    settings = Settings(database_url="unused://", secret_keys=KEYS)
    return serving(shared_app(settings, engine) if shared else create_app(settings, engine))


@pytest.fixture
def api(engine: Engine) -> Iterator[Api]:
    with serve_api(engine, shared=True) as base:
        found = Api(base, engine)
        try:
            yield found
        finally:
            for client in found._clients:
                client.close()


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The one error body of R34: `{"error": {"code", "message"[, "where"]}}`."""
    data = response.json()
    assert set(data) == {"error"}, data
    assert isinstance(data["error"]["code"], str)
    assert data["error"]["code"]
    assert isinstance(data["error"]["message"], str)
    assert data["error"]["message"]
    return dict(data["error"])
