"""The unsubscribe link never answers an error while the product is up (R3, DESIGN
guarantee 6): on SQLite, a click that finds the database locked past its retry budget
is kept on disk, answered as done, and written as soon as the lock is free, with the
time of the click."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from optout.clock import utcnow
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.web import unsubscribe, unsubscribe_spool
from tests.factories import World
from tests.web.conftest import web_client


def _opted_out_within(engine: sa.Engine, *, seconds: float) -> str | None:
    """The address opted out once the spool has written the click (None if not in time)."""
    deadline = time.monotonic() + seconds
    s = t.suppressions
    while True:
        with engine.connect() as db:
            written = db.scalar(sa.select(s.c.email).where(s.c.kind == "opt_out"))
        if written or time.monotonic() > deadline:
            return written
        time.sleep(0.1)


def test_R3_a_click_on_a_database_locked_too_long_is_kept_and_written_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'optout.sqlite3'}")
    upgrade(engine)
    with engine.begin() as db:
        world = World(db, utcnow())
        person = world.person("jane@example.com")
    monkeypatch.setattr(unsubscribe, "BUDGET_SECONDS", 0.5)
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with engine.begin() as db:
            db.execute(t.workspaces.update().where(t.workspaces.c.id == -1).values(name="x"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    with web_client(engine) as web:
        holder.start()
        holding.wait(5)
        answer = web.http.post(
            web.link(world, person, "jane@example.com"), data={"List-Unsubscribe": "One-Click"}
        )
        kept = list((tmp_path / unsubscribe_spool.FOLDER_NAME).glob("*.json"))
        release.set()
        holder.join()
        written = _opted_out_within(engine, seconds=10)

    assert answer.status_code == 200
    assert "j***@example.com" in answer.text
    assert len(kept) == 1
    assert written == "jane@example.com"
    assert list((tmp_path / unsubscribe_spool.FOLDER_NAME).glob("*.json")) == []
    engine.dispose()


def test_R3_a_click_when_every_connection_is_taken_is_kept_and_written_later(
    tmp_path: Path,
) -> None:
    """Under a long write lock every pooled connection can be held by a request waiting for
    it; the next click finds none free within the pool's wait. It is kept all the same,
    answered as done (without the address, which no connection could read), and written
    once a connection is free."""
    url = f"sqlite:///{tmp_path / 'optout.sqlite3'}"
    upgrade(create_engine(url))
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.5)
    with engine.begin() as db:
        world = World(db, utcnow())
        person = world.person("jane@example.com")
    with web_client(engine) as web:
        link = web.link(world, person, "jane@example.com")
        taken = engine.connect()  # the pool's only connection
        try:
            answer = web.http.post(link, data={"List-Unsubscribe": "One-Click"})
            kept = list((tmp_path / unsubscribe_spool.FOLDER_NAME).glob("*.json"))
        finally:
            taken.close()
        written = _opted_out_within(engine, seconds=10)

    assert answer.status_code == 200
    assert "no more emails will be sent to this address" in answer.text
    assert len(kept) == 1
    assert written == "jane@example.com"
    engine.dispose()
