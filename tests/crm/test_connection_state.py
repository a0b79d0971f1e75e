"""What a CRM connection says it is, and how long a CRM that does not answer can hold it:
a test against an address that takes the connection and never answers gives up after one
read timeout with a sentence, never a socket's words; a sync asked for runs as a
background job and, when it fails, the connection says "last sync failed" and why; a
connection without its token is never "connected" (R32, R34)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.crm import connections, manage
from optout.crypto import new_key
from optout.db import tables as t
from optout.errors import InvalidInput
from optout.jobs import runner, store
from tests.crm.conftest import ENV, connect_workspace, hubspot_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.factories import World

QUICK = {**ENV, "OPTOUT_CRM_READ_TIMEOUT": "1"}
HUBSPOT_SECRETS = {"token": "OPTOUT_TEST_HUBSPOT_TOKEN"}
HUBSPOT_SETTINGS = {"requests_per_10s": None, "search_per_second": None}


@dataclass
class Silent:
    """A server that takes every connection and never answers: the CRM behind a stuck
    proxy. It counts the connections it took."""

    sock: socket.socket
    taken: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                self.taken.append(self.sock.accept()[0])
            except OSError:
                return


@pytest.fixture
def silent() -> Iterator[Silent]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = Silent(sock)
    threading.Thread(target=server._accept, daemon=True).start()
    try:
        yield server
    finally:
        sock.close()
        for taken in server.taken:
            taken.close()


def _state(engine: Engine, connection_id: int, env: dict[str, str]) -> manage.Status:
    with engine.connect() as db:
        connection = connections.by_id(db, connection_id=connection_id)
        return manage.status(db, connection=connection, env=env)


def _sync_in_the_background(engine: Engine, ws: int, env: dict[str, str]) -> store.Job:
    """Ask for a sync as the page does, and let a job runner work on it."""
    job = manage.queue_sync(engine, workspace_id=ws, kind="hubspot", env=env, keys=(), actor="a@b")
    assert job.kind == "crm_sync"
    assert job.state == "queued"
    runner.run_pending(engine, runner=runner.new_runner_id())
    with engine.connect() as db:
        return store.get(db, workspace_id=ws, job_id=job.id)


def test_R34_a_crm_that_never_answers_fails_the_test_after_one_read_timeout(
    fresh_engine: Engine, silent: Silent
) -> None:
    crm = connect_workspace(
        fresh_engine, FakeClock(), kind="hubspot", base_url=silent.url,
        secrets=HUBSPOT_SECRETS, settings=HUBSPOT_SETTINGS,
    )  # fmt: skip
    assert _state(fresh_engine, crm.connection_id, QUICK).state.label == "never tested"

    result = manage.test(fresh_engine, workspace_id=crm.ws, kind="hubspot", env=QUICK, keys=())

    assert not result.ok
    assert result.message == f"HubSpot did not answer within 1 second ({silent.url})"
    assert "Errno" not in result.message
    assert len(silent.taken) == 1  # a person is waiting: a timeout is not tried again
    state = _state(fresh_engine, crm.connection_id, QUICK).state
    assert (state.code, state.label, state.tone) == ("test_failed", "last test failed", "danger")
    assert state.why == result.message
    assert state.when is not None


def test_R32_a_sync_that_fails_in_the_background_says_last_sync_failed_and_why(
    fresh_engine: Engine, silent: Silent, start_hubspot: Callable[..., HubSpot], clock: FakeClock
) -> None:
    crm = connect_workspace(
        fresh_engine, clock, kind="hubspot", base_url=silent.url,
        secrets=HUBSPOT_SECRETS, settings=HUBSPOT_SETTINGS,
    )  # fmt: skip

    failed = _sync_in_the_background(fresh_engine, crm.ws, QUICK)

    why = f"HubSpot did not answer within 1 second ({silent.url})"
    assert failed.state == "failed"
    assert failed.error == f"the sync failed: {why}"
    assert len(silent.taken) == 2  # a sync tries a timed-out call once more, no more
    status = _state(fresh_engine, crm.connection_id, QUICK)
    assert (status.state.label, status.state.why) == ("last sync failed", why)
    assert status.runs[0]["status"] == "failed"

    # The same connection, its address mended: the next sync connects it.
    emulator = start_hubspot()
    emulator.contact("ann@acme.com", firstname="Ann")
    with fresh_engine.begin() as db:
        connections.connect(
            db, workspace_id=crm.ws, kind="hubspot", base_url=emulator.url, now=utcnow()
        )
    done = _sync_in_the_background(fresh_engine, crm.ws, QUICK)

    assert done.state == "done", done.error
    assert done.result is not None
    assert done.result["read"] == 1
    assert done.result["created"] == 1
    state = _state(fresh_engine, crm.connection_id, QUICK).state
    assert (state.label, state.tone, state.why) == ("connected", "ok", "")
    assert state.last_good_sync is not None


def test_R32_a_second_sync_asked_for_while_one_waits_is_the_same_job(
    fresh_engine: Engine, start_hubspot: Callable[..., HubSpot], clock: FakeClock
) -> None:
    crm = hubspot_workspace(fresh_engine, clock, start_hubspot())

    first = manage.queue_sync(
        fresh_engine, workspace_id=crm.ws, kind="hubspot", env=ENV, keys=(), actor="a@b"
    )
    again = manage.queue_sync(
        fresh_engine, workspace_id=crm.ws, kind="hubspot", env=ENV, keys=(), actor="a@b"
    )
    runner.run_pending(fresh_engine, runner=runner.new_runner_id())

    assert again.id == first.id
    with fresh_engine.connect() as db:
        ran = db.scalar(
            sa.select(sa.func.count()).where(
                t.crm_sync_log.c.connection_id == crm.connection_id,
                t.crm_sync_log.c.trigger == "manual",
            )
        )
    assert ran == 1


def test_R34_a_connection_without_its_token_is_never_connected(
    fresh_engine: Engine, start_hubspot: Callable[..., HubSpot], clock: FakeClock
) -> None:
    crm = hubspot_workspace(fresh_engine, clock, start_hubspot())
    tested = manage.test(fresh_engine, workspace_id=crm.ws, kind="hubspot", env=ENV, keys=())
    assert tested.ok
    assert _state(fresh_engine, crm.connection_id, ENV).state.label == "connected"

    # The variable that held the token is gone from this server's environment.
    unset = {k: v for k, v in ENV.items() if k != "OPTOUT_TEST_HUBSPOT_TOKEN"}
    state = _state(fresh_engine, crm.connection_id, unset).state
    assert (state.code, state.label) == ("no_credentials", "no token saved")


def test_R34_connecting_hubspot_without_a_token_is_refused(world: World) -> None:
    with pytest.raises(InvalidInput) as refused:
        manage.connect(
            world.db,
            workspace_id=world.ws,
            kind="hubspot",
            base_url="https://api.hubapi.com",
            settings={},
            secrets={"token": "", "webhook_secret": ""},
            keys=(new_key(),),
            now=utcnow(),
        )
    assert refused.value.message == (
        "HubSpot cannot be connected without its access token: paste it in the access token field"
    )
    assert connections.for_workspace(world.db, workspace_id=world.ws) == []


def test_R32_a_sync_whose_process_died_reads_last_sync_failed_not_syncing(
    fresh_engine: Engine, start_hubspot: Callable[..., HubSpot], clock: FakeClock
) -> None:
    crm = hubspot_workspace(fresh_engine, clock, start_hubspot())
    with fresh_engine.begin() as db:
        db.execute(
            t.crm_sync_log.insert().values(
                workspace_id=crm.ws, connection_id=crm.connection_id, trigger="schedule",
                status="running", started_at=utcnow() - timedelta(hours=2), counts={},
                api_calls=0, error="",
            )
        )  # fmt: skip

    state = _state(fresh_engine, crm.connection_id, ENV).state

    assert (state.label, state.why) == ("last sync failed", "it stopped before it finished")


def test_R32_a_token_that_may_not_write_opt_outs_fails_the_test_of_a_connection_that_writes(
    fresh_engine: Engine, start_hubspot: Callable[..., HubSpot], clock: FakeClock
) -> None:
    """The scope is asked for at the test, not discovered at the first write-back; a
    connection that only reads needs no write scope."""
    read_only = start_hubspot(scopes=("crm.objects.contacts.read", "crm.objects.deals.read"))
    crm = hubspot_workspace(fresh_engine, clock, read_only)

    reading = manage.test(fresh_engine, workspace_id=crm.ws, kind="hubspot", env=ENV, keys=())
    crm.map("contacts", "hs_email_optout", "email_opt_out", "read_write")
    writing = manage.test(fresh_engine, workspace_id=crm.ws, kind="hubspot", env=ENV, keys=())

    assert reading.ok
    assert not writing.ok
    assert "communication_preferences.write" in writing.message
    state = _state(fresh_engine, crm.connection_id, ENV).state
    assert state.label == "last test failed"
