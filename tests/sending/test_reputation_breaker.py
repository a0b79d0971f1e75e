"""The reputation breaker pauses a mailbox whose recent sends bounce or draw complaints
too often; its emails wait, an admin resumes it, and the workspace sets the lines (R40)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.eligibility import Purpose
from optout.sending.transports import OutboxTransport, SmtpTransport, Transport
from optout.sending.worker import Mailer, run_once
from optout.services import eligibility
from optout.services.mailboxes import reputation, sender_mailboxes
from optout.services.suppression import optouts
from tests.factories import World
from tests.sending.smtp_server import Refusing, smtp_server

KEYS = ("breaker-test-secret-key-0123456789",)
MONDAY = datetime(2026, 11, 2, 9, 0)


@contextmanager
def committed(engine: Engine, now: datetime) -> Iterator[World]:
    with engine.begin() as db:
        yield World(db, now)


def _mailer(transport: Transport) -> Mailer:
    return Mailer(Settings(database_url="unused://", secret_keys=KEYS), transport)


def _build(engine: Engine, *, senders: dict[str, int]) -> dict[str, list[str]]:
    """A sequence per mailbox (no gap), `senders[address]` people each; their addresses."""
    now = MONDAY - timedelta(minutes=1)
    recipients: dict[str, list[str]] = {}
    with committed(engine, now) as world:
        for n, (address, count) in enumerate(senders.items()):
            sender_mailboxes.create(
                world.db,
                workspace_id=world.ws,
                address=address,
                min_gap_seconds=0,
                actor="admin@acme",
                now=now,
            )
            sequence = world.sequence(f"From {address}")
            sender_mailboxes.set_for_sequence(
                world.db,
                workspace_id=world.ws,
                sequence_id=sequence,
                addresses=[address],
                actor="admin@acme",
                now=now,
            )
            recipients[address] = [f"r{n}-{i:02d}@client{i}.com" for i in range(count)]
            world.enroll(sequence, [world.person(a) for a in recipients[address]])
    return recipients


def _mailbox(engine: Engine, address: str) -> dict[str, object]:
    b = t.mailboxes
    with engine.connect() as db:
        return dict(db.execute(sa.select(b).where(b.c.address == address)).mappings().one())


def _queued(engine: Engine) -> int:
    o = t.outbound_emails
    with engine.connect() as db:
        return int(db.scalar(sa.select(sa.func.count()).where(o.c.status == "queued")) or 0)


def test_R40_hard_bounces_above_the_line_pause_the_mailbox_and_its_emails_wait(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    sender = "ann@acme-sales.com"
    recipients = _build(fresh_engine, senders={sender: 33})[sender]
    refused = recipients[17:20]  # the 18th to 20th sends
    handler = Refusing(replies={a: f"550 5.1.1 <{a}>: user unknown" for a in refused})
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, security="none", timeout=5, retries=0)
        result = run_once(fresh_engine, mailer=_mailer(transport), now=MONDAY, batch=10)
        transport.close()
    # Two hard bounces in 20 sends (10%) cross the 5% line: the third bounced address
    # was already suppressed; the 13 emails not yet claimed wait, none cancelled for it.
    assert result.sent == 17
    box = _mailbox(fresh_engine, sender)
    assert box["status"] == "paused"
    assert box["pause_reason"] == (
        "hard bounces at 10.0% of the last 20 sends (2), above the 5.0% line"
    )
    assert _queued(fresh_engine) == 13
    ev = t.events
    with fresh_engine.connect() as db:
        paused = db.execute(
            sa.select(ev.c.actor, ev.c.detail).where(ev.c.kind == "mailbox_paused")
        ).one()
    assert paused.actor == "reputation breaker"
    assert (paused.detail["sends"], paused.detail["hard_bounces"]) == (20, 2)

    outbox = OutboxTransport(tmp_path)
    later = MONDAY + timedelta(minutes=5)
    assert run_once(fresh_engine, mailer=_mailer(outbox), now=later).sent == 0
    assert _queued(fresh_engine) == 13
    with fresh_engine.connect() as db:
        why = eligibility.explain(
            db,
            workspace_id=1,
            email=recipients[-1],
            sequence=f"From {sender}",
            now=later,
            purpose=Purpose.SEND,
        )
    assert why.decision.allowed  # the person may be emailed; the mailbox is what waits
    assert why.warnings == [
        "Sent from ann@acme-sales.com, which is paused (hard bounces at 10.0% of the last "
        "20 sends (2), above the 5.0% line): its emails wait until an admin resumes it."
    ]
    with fresh_engine.begin() as db:
        sender_mailboxes.resume(db, workspace_id=1, address=sender, actor="admin@acme", now=later)
    # Counted again from the pause: the clean sends that follow do not trip it again.
    assert run_once(fresh_engine, mailer=_mailer(outbox), now=later).sent == 13
    assert _mailbox(fresh_engine, sender)["status"] == "active"


def test_R40_complaints_pause_the_mailbox_and_above_the_domain_line_its_whole_domain(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    senders = {"ann@acme-sales.com": 20, "bob@acme-sales.com": 20, "cy@acme-mail.com": 20}
    recipients = _build(fresh_engine, senders=senders)
    assert run_once(fresh_engine, mailer=_mailer(OutboxTransport(tmp_path)), now=MONDAY).sent == 60
    with fresh_engine.begin() as db:
        optouts.complain(
            db,
            workspace_id=1,
            email=recipients["ann@acme-sales.com"][3],
            actor="feedback loop",
            now=MONDAY + timedelta(hours=1),
            reporting_domain="mail.example",
        )
    ann, bob, cy = (_mailbox(fresh_engine, a) for a in senders)
    assert ann["status"] == "paused"
    assert str(ann["pause_reason"]).startswith("spam complaints at 5.0% of the last 20 sends")
    # One complaint in the domain's 40 sends is 2.5%, above its 0.3% line: bob pauses too.
    assert bob["status"] == "paused"
    assert str(bob["pause_reason"]).startswith(
        "spam complaints on acme-sales.com at 2.5% of its last 40 sends"
    )
    assert cy["status"] == "active"


def test_R40_the_lines_are_the_workspace_s_settings(fresh_engine: Engine, tmp_path: Path) -> None:
    sender = "ann@acme-sales.com"
    recipients = _build(fresh_engine, senders={sender: 20})[sender]
    with fresh_engine.begin() as db:
        reputation.set_lines(
            db, workspace_id=1, actor="admin@acme", now=MONDAY, bounce_pause_rate=0.2
        )
    run_once(fresh_engine, mailer=_mailer(OutboxTransport(tmp_path)), now=MONDAY)
    with fresh_engine.begin() as db:
        for address in recipients[:3]:  # 15%: under this workspace's 20% line
            optouts.bounce(
                db, workspace_id=1, email=address, actor="dsn", now=MONDAY + timedelta(hours=1)
            )
    assert _mailbox(fresh_engine, sender)["status"] == "active"
    with fresh_engine.begin() as db:
        for address in recipients[3:5]:  # 25%
            optouts.bounce(
                db, workspace_id=1, email=address, actor="dsn", now=MONDAY + timedelta(hours=1)
            )
    assert _mailbox(fresh_engine, sender)["status"] == "paused"
