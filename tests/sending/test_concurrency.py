"""Many workers and concurrent changes against one database (R14, R28).

Real processes, real commits: four workers share the queue and every due email
is sent exactly once; opt-outs and exclusion saves committed while workers claim
are never beaten by a claim that started after them.
"""

from __future__ import annotations

import email
import multiprocessing
import random
import time
from datetime import datetime, timedelta
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.config import Settings
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.sending.transports import OutboxTransport
from optout.sending.worker import Mailer, run_once
from optout.services.exclusions import saves
from optout.services.suppression import optouts
from tests.factories import World

KEYS = ("concurrency-test-secret-key-0123456789",)
SPAWN = multiprocessing.get_context("spawn")


class SlowOutbox(OutboxTransport):
    """A real outbox that takes a few milliseconds per message, like a remote server."""

    def send(self, message: bytes, *, sender: str, recipients: list[str]) -> str:  # type: ignore[override]
        time.sleep(0.004)
        return super().send(message, sender=sender, recipients=recipients)


def _worker(url: str, folder: str, batch: int, use_clock: bool, fixed_now: datetime) -> None:
    engine = create_engine(url)
    mailer = Mailer(Settings(database_url=url, secret_keys=KEYS), SlowOutbox(Path(folder)))
    idle = 0
    while idle < 3:
        now = utcnow() if use_clock else fixed_now
        result = run_once(engine, mailer=mailer, now=now, batch=batch)
        idle = idle + 1 if result.claimed == 0 and result.cancelled == 0 else 0
        time.sleep(0.02)
    engine.dispose()


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _populate(engine: Engine, *, people: int, companies: int, now: datetime) -> None:
    with engine.begin() as db:
        world = World(db, now)
        ids = [
            world.person(f"p{i}@company{i % companies}.com", company=f"company{i % companies}.com")
            for i in range(people)
        ]
        sequence = world.sequence()
        world.enroll(sequence, ids)


def _message_ids(folder: Path) -> list[str]:
    return [
        str(email.message_from_bytes(p.read_bytes(), policy=policy.default)["Message-ID"])
        for p in folder.glob("*.eml")
    ]


def _start(url: str, folder: Path, *, count: int, use_clock: bool, now: datetime) -> list:  # type: ignore[type-arg]
    processes = [
        SPAWN.Process(target=_worker, args=(url, str(folder), 7, use_clock, now))
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    return processes


def _join(processes: list) -> None:  # type: ignore[type-arg]
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0


def test_R28_four_worker_processes_send_every_due_email_exactly_once(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    now = datetime(2026, 11, 2, 9, 0)
    _populate(fresh_engine, people=240, companies=24, now=now)
    workers = _start(_url(fresh_engine), tmp_path, count=4, use_clock=False, now=now)
    _join(workers)
    ids = _message_ids(tmp_path)
    assert len(ids) == 240
    assert len(set(ids)) == 240
    o = t.outbound_emails
    with fresh_engine.connect() as db:
        statuses = dict(
            db.execute(sa.select(o.c.status, sa.func.count()).group_by(o.c.status)).all()
        )
    assert statuses == {"sent": 240}


def test_R14_changes_committed_while_workers_claim_always_win(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    start = utcnow() - timedelta(minutes=1)
    _populate(fresh_engine, people=300, companies=30, now=start)
    rng = random.Random(7)
    victims = rng.sample(range(300), 60)
    domains = [f"company{i}.com" for i in rng.sample(range(30), 4)]
    workers = _start(_url(fresh_engine), tmp_path, count=3, use_clock=True, now=start)
    committed_at: dict[str, datetime] = {}
    for n, i in enumerate(victims):
        with fresh_engine.begin() as db:
            optouts.opt_out(
                db,
                workspace_id=1,
                email=f"p{i}@company{i % 30}.com",
                actor="race",
                channel="manual",
                now=utcnow(),
            )
        committed_at[f"p{i}@company{i % 30}.com"] = utcnow()
        if n % 15 == 0:
            domain = domains[n // 15]
            with fresh_engine.begin() as db:
                saves.create(
                    db,
                    workspace_id=1,
                    name=f"Stop {domain}",
                    level="company",
                    filter=f"company.domain = {domain}",
                    actor="race",
                    now=utcnow(),
                    exclude_from_sequences=True,
                    unenroll_existing_on_save=True,
                    confirm=True,
                )
            for j in range(300):
                if f"company{j % 30}.com" == domain:
                    committed_at.setdefault(f"p{j}@{domain}", utcnow())
        time.sleep(0.003)
    _join(workers)
    o, p = t.outbound_emails, t.people
    with fresh_engine.connect() as db:
        sent = db.execute(
            sa.select(p.c.email, o.c.sent_at)
            .join(p, p.c.id == o.c.person_id)
            .where(o.c.status == "sent")
        ).all()
        cancelled = db.scalar(sa.select(sa.func.count()).where(o.c.status == "cancelled"))
    late = [(addr, at) for addr, at in sent if addr in committed_at and at > committed_at[addr]]
    assert late == []  # no claim that began after a change committed ever sent
    assert cancelled > 0  # the race was real: some changes beat the workers
    assert len(sent) + cancelled == 300
    if len(sent) == 300:
        pytest.fail("every email went out before any change: the race did not happen")
