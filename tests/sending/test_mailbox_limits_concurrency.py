"""Mailbox limits hold with four worker processes sharing the queue (R37).

Real processes and commits on a clock that runs 40 times faster than the wall clock
(all workers read the same one): three mailboxes of limit 20 and a 10 s gap, 500 due
emails. Each day exactly 60 go, 20 per mailbox, never two of one mailbox closer than its
gap; the others wait in the queue, none failed or cancelled.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.sending.transports import OutboxTransport
from optout.sending.worker import Mailer, run_once
from optout.services.mailboxes import sender_mailboxes
from tests.factories import World

KEYS = ("limits-test-secret-key-0123456789",)
SPAWN = multiprocessing.get_context("spawn")
SPEED = 40  # simulated seconds per wall-clock second
GAP = 10  # seconds, simulated
LIMIT = 20
MONDAY = datetime(2026, 11, 2, 9, 0)  # 10:00 in Berlin, the mailboxes' zone
ADDRESSES = ("ann@acme-sales.com", "bob@acme-sales.com", "cy@acme-sales.com")


def _worker(url: str, folder: str, day: datetime, started: float) -> None:
    engine = create_engine(url)
    mailer = Mailer(Settings(database_url=url, secret_keys=KEYS), OutboxTransport(Path(folder)))
    last_claim = time.monotonic()
    # Until nothing was claimed for 2 s of wall clock (80 s simulated, 5 gaps and more).
    while time.monotonic() - last_claim < 2:
        now = day + timedelta(seconds=(time.time() - started) * SPEED)
        if run_once(engine, mailer=mailer, now=now, batch=7).claimed:
            last_claim = time.monotonic()
        time.sleep(0.02)
    engine.dispose()


def _populate(engine: Engine) -> None:
    now = MONDAY - timedelta(minutes=1)
    with engine.begin() as db:
        world = World(db, now)
        for address in ADDRESSES:
            sender_mailboxes.create(
                db,
                workspace_id=world.ws,
                address=address,
                daily_limit=LIMIT,
                min_gap_seconds=GAP,
                gap_jitter=0.5,
                time_zone="Europe/Berlin",
                actor="admin@acme",
                now=now,
            )
        sequence = world.sequence()
        sender_mailboxes.set_for_sequence(
            db,
            workspace_id=world.ws,
            sequence_id=sequence,
            addresses=list(ADDRESSES),
            actor="admin@acme",
            now=now,
        )
        world.enroll(sequence, [world.person(f"p{i}@client{i % 50}.com") for i in range(500)])


def _run_day(engine: Engine, folder: Path, day: datetime) -> None:
    url = engine.url.render_as_string(hide_password=False)
    started = time.time()
    workers = [
        SPAWN.Process(target=_worker, args=(url, str(folder), day, started)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0


def _sends(engine: Engine) -> dict[str, list[datetime]]:
    o, b = t.outbound_emails, t.mailboxes
    with engine.connect() as db:
        rows = db.execute(
            sa.select(b.c.address, o.c.sent_at)
            .join(b, b.c.id == o.c.mailbox_id)
            .where(o.c.status == "sent")
            .order_by(o.c.sent_at)
        ).all()
    sends: dict[str, list[datetime]] = {}
    for address, at in rows:
        sends.setdefault(address, []).append(at)
    return sends


def _statuses(engine: Engine) -> dict[str, int]:
    o = t.outbound_emails
    with engine.connect() as db:
        return dict(db.execute(sa.select(o.c.status, sa.func.count()).group_by(o.c.status)).all())


def test_R37_four_workers_send_each_mailbox_s_daily_limit_spaced_by_its_gap(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    _populate(fresh_engine)
    _run_day(fresh_engine, tmp_path, MONDAY)
    assert _statuses(fresh_engine) == {"sent": 60, "queued": 440}
    monday = _sends(fresh_engine)
    assert {a: len(at) for a, at in monday.items()} == dict.fromkeys(ADDRESSES, LIMIT)
    for times in monday.values():
        closest = min(b - a for a, b in itertools.pairwise(times))
        assert closest >= timedelta(seconds=GAP)
    assert len(list(tmp_path.glob("*.eml"))) == 60

    _run_day(fresh_engine, tmp_path, MONDAY + timedelta(days=1))
    assert _statuses(fresh_engine) == {"sent": 120, "queued": 380}
    tuesday = {
        a: [at for at in times if at >= MONDAY + timedelta(days=1)]
        for a, times in _sends(fresh_engine).items()
    }
    assert {a: len(at) for a, at in tuesday.items()} == dict.fromkeys(ADDRESSES, LIMIT)
    for times in tuesday.values():
        closest = min(b - a for a, b in itertools.pairwise(times))
        assert closest >= timedelta(seconds=GAP)
