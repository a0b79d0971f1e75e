"""CRM sync tests run end to end over real HTTP: the real connectors talk to the HubSpot
and Salesforce emulators served by uvicorn on free local ports, and write to a fresh
SQLite or PostgreSQL database (the sync commits page by page). Rate windows and sleeps
run on a FakeClock shared by the emulator and the connector, so nothing waits for real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.config import Settings
from optout.crm import connections, sync
from optout.crm.mapping import FieldMapping
from optout.crm.protocol import Connector
from optout.db import tables as t
from optout.services.directory import people
from optout.services.enrollments import enrolling
from optout.web.app import create_app
from tests.crm.emulators import conformance
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.salesforce import Salesforce
from tests.factories import World
from tests.web.conftest import serving

HUBSPOT_TOKEN = "pat-na1-test-token"
HUBSPOT_SECRET = "hubspot-app-client-secret"
SF_SECRET = "test-client-secret"
SF_WEBHOOK_SECRET = "test-salesforce-webhook-secret"
ENV = {
    "OPTOUT_TEST_HUBSPOT_TOKEN": HUBSPOT_TOKEN,
    "OPTOUT_TEST_HUBSPOT_SECRET": HUBSPOT_SECRET,
    "OPTOUT_TEST_SF_SECRET": SF_SECRET,
    "OPTOUT_TEST_SF_WEBHOOK_SECRET": SF_WEBHOOK_SECRET,
    # The emulators listen on loopback, which the outbound guard refuses unless named.
    "OPTOUT_CRM_ALLOWED_HOSTS": "127.0.0.1",
}


@pytest.fixture(autouse=True)
def _held_to_the_real_apis() -> Iterator[None]:
    """Fail the test during which an emulator saw a request, or gave an answer, that
    the real API's documented shapes do not allow (tests/crm/emulators/conformance)."""
    before = set(conformance.recorded())
    yield
    found = [d for d in conformance.recorded() if d not in before]
    if found:
        conformance.forget(found)
        pytest.fail(
            "the CRM emulators saw what the real APIs would not do:\n"
            + "\n".join(f"  {d}" for d in found[:20]),
            pytrace=False,
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as opened:
        yield opened


@pytest.fixture
def start_hubspot(stack: ExitStack, clock: FakeClock) -> Callable[..., HubSpot]:
    def start(**options: Any) -> HubSpot:
        emulator = HubSpot(token=HUBSPOT_TOKEN, clock=clock, **options)
        emulator.url = stack.enter_context(serving(emulator.app))
        return emulator

    return start


@pytest.fixture
def rsa_key(tmp_path: Path) -> tuple[Path, bytes]:
    """A private key file for the JWT bearer flow, and its public half for the emulator."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "salesforce.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


@pytest.fixture
def start_salesforce(
    stack: ExitStack, clock: FakeClock, rsa_key: tuple[Path, bytes]
) -> Callable[..., Salesforce]:
    def start(**options: Any) -> Salesforce:
        emulator = Salesforce(clock=clock, public_key_pem=rsa_key[1], **options)
        emulator.base_url = stack.enter_context(serving(emulator.app))
        emulator.url = emulator.base_url
        return emulator

    return start


@dataclass
class Crm:
    """One workspace connected to one emulated CRM, with a sequence to enroll people in."""

    engine: Engine
    ws: int
    connection_id: int
    sequence_id: int
    clock: FakeClock
    env: dict[str, str] = field(default_factory=lambda: dict(ENV))

    def connector(self) -> Connector:
        with self.engine.connect() as db:
            connection = connections.by_id(db, connection_id=self.connection_id)
            fields = connections.mappings(db, connection_id=self.connection_id)
        return connections.connector_for(
            connection, fields, self.env, clock=self.clock, sleep=self.clock.sleep
        )

    def sync(self, *, full: bool = False, connector: Connector | None = None) -> sync.SyncReport:
        used = connector or self.connector()
        try:
            [report] = sync.sync_workspace(
                self.engine,
                workspace_id=self.ws,
                connectors={self.connection_id: used},
                full=full,
            )
        finally:
            if connector is None:
                used.close()
        return report

    def map(self, obj: str, crm_field: str, our_field: str, mode: str = "read") -> None:
        with self.engine.begin() as db:
            connection = connections.by_id(db, connection_id=self.connection_id)
            connections.set_mapping(
                db,
                connection=connection,
                field_mapping=FieldMapping(obj, crm_field, our_field, mode),
                now=utcnow(),
            )

    def setting(self, **settings: Any) -> None:
        with self.engine.begin() as db:
            connection = connections.by_id(db, connection_id=self.connection_id)
            connections.connect(
                db,
                workspace_id=self.ws,
                kind=connection.kind,
                base_url=connection.base_url,
                settings=settings,
                now=utcnow(),
            )

    @contextmanager
    def db(self) -> Iterator[Connection]:
        with self.engine.begin() as db:
            yield db

    def person_id(self, email: str) -> int:
        with self.engine.connect() as db:
            return people.id_by_email(db, workspace_id=self.ws, email=email)

    def enroll(self, *emails: str) -> None:
        with self.engine.begin() as db:
            ids = [people.id_by_email(db, workspace_id=self.ws, email=e) for e in emails]
            enrolling.enroll(
                db,
                workspace_id=self.ws,
                sequence_id=self.sequence_id,
                people=ids,
                actor="test@optout",
                now=utcnow(),
            )

    def status(self, email: str) -> str | None:
        e, p = t.enrollments, t.people
        with self.engine.connect() as db:
            return db.scalar(
                sa.select(e.c.status)
                .join(p, p.c.id == e.c.person_id)
                .where(p.c.workspace_id == self.ws, p.c.email == email)
                .order_by(e.c.id.desc())
                .limit(1)
            )

    def opted_out(self, email: str) -> bool:
        s = t.suppressions
        with self.engine.connect() as db:
            return (
                db.scalar(
                    sa.select(s.c.id).where(
                        s.c.workspace_id == self.ws, s.c.email == email, s.c.kind == "opt_out"
                    )
                )
                is not None
            )

    def scalar(self, statement: sa.Executable) -> Any:
        with self.engine.connect() as db:
            return db.scalar(statement)

    def bookmark(self, obj: str) -> Any:
        s = t.crm_sync_state
        return self.scalar(
            sa.select(s.c.bookmark).where(
                s.c.connection_id == self.connection_id, s.c.crm_object == obj
            )
        )


def connect_workspace(
    engine: Engine,
    clock: FakeClock,
    *,
    kind: str,
    base_url: str,
    secrets: dict[str, str],
    settings: dict[str, Any] | None = None,
    build: Callable[[World], None] | None = None,
) -> Crm:
    """A committed workspace with a one-email sequence, connected to the CRM."""
    with engine.begin() as db:
        world = World(db, utcnow(), slug=f"crm-{kind}")
        sequence_id = world.sequence("Outbound")
        if build is not None:
            build(world)
        connection = connections.connect(
            db,
            workspace_id=world.ws,
            kind=kind,
            base_url=base_url,
            secrets=secrets,
            settings=settings or {},
            now=utcnow(),
        )
    return Crm(engine, world.ws, connection.id, sequence_id, clock)


def hubspot_workspace(engine: Engine, clock: FakeClock, emulator: HubSpot, **kw: Any) -> Crm:
    settings = {"requests_per_10s": None, "search_per_second": None, **kw.pop("settings", {})}
    return connect_workspace(
        engine,
        clock,
        kind="hubspot",
        base_url=emulator.url,
        secrets={
            "token": "OPTOUT_TEST_HUBSPOT_TOKEN",
            "webhook_secret": "OPTOUT_TEST_HUBSPOT_SECRET",
        },
        settings=settings,
        **kw,
    )


def salesforce_workspace(engine: Engine, clock: FakeClock, emulator: Salesforce, **kw: Any) -> Crm:
    settings = {
        "auth": "client_credentials",
        "client_id": emulator.client_id,
        **kw.pop("settings", {}),
    }
    return connect_workspace(
        engine,
        clock,
        kind="salesforce",
        base_url=emulator.base_url,
        secrets={
            "client_secret": "OPTOUT_TEST_SF_SECRET",
            "webhook_secret": "OPTOUT_TEST_SF_WEBHOOK_SECRET",
        },
        settings=settings,
        **kw,
    )


@contextmanager
def optout_web(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """optout's own web app (where the CRMs push), with the connections' secrets in its
    environment; yields its base URL."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    app = create_app(
        Settings(database_url="unused://", secret_keys=("crm-test-key-0123456789",)), engine
    )
    with serving(app) as base:
        httpx.get(f"{base}/healthz", timeout=10)  # the first request to a new server is slow
        yield base
