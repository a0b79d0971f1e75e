"""Sender mailboxes in the worker: each enrollment sends from one mailbox, a mailbox never
sends more than its daily limit in its own calendar day nor two emails closer than its
gap, and a paused mailbox's emails wait in their place (R37, R40)."""

from __future__ import annotations

import email
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.errors import Conflict
from optout.sending.transports import OutboxTransport
from optout.sending.worker import Mailer, run_once
from optout.services.mailboxes import removal, sender_mailboxes
from optout.services.sequences import definitions
from tests.factories import ONE_EMAIL, World

KEYS = ("capacity-test-secret-key-0123456789",)
MONDAY = datetime(2026, 11, 2, 9, 0)  # UTC; 10:00 in Berlin
TWO_EMAILS = (
    *ONE_EMAIL,
    definitions.Step(kind="wait", wait_seconds=2 * 86400),
    definitions.Step(kind="email", subject="Following up", body_text="Still there?"),
)


@contextmanager
def committed(engine: Engine, now: datetime = MONDAY) -> Iterator[World]:
    with engine.begin() as db:
        yield World(db, now)


def _mailer(folder: Path) -> Mailer:
    return Mailer(Settings(database_url="unused://", secret_keys=KEYS), OutboxTransport(folder))


def _statuses(engine: Engine) -> dict[str, int]:
    o = t.outbound_emails
    with engine.connect() as db:
        return dict(db.execute(sa.select(o.c.status, sa.func.count()).group_by(o.c.status)).all())  # type: ignore[arg-type]


def _world_with_mailbox(
    engine: Engine, *, people: int, now: datetime, **settings: object
) -> tuple[int, str]:
    """A sequence sending from one new mailbox, `people` enrolled; (sequence, address)."""
    with committed(engine, now) as world:
        box = sender_mailboxes.create(
            world.db,
            workspace_id=world.ws,
            address="ann@acme-sales.com",
            display_name="Ann Lee",
            actor="admin@acme",
            now=now,
            **settings,  # type: ignore[arg-type]
        )
        sequence = world.sequence()
        sender_mailboxes.set_for_sequence(
            world.db,
            workspace_id=world.ws,
            sequence_id=sequence,
            addresses=[box.address],
            actor="admin@acme",
            now=now,
        )
        ids = [world.person(f"p{i}@client{i}.com") for i in range(people)]
        world.enroll(sequence, ids)
    return sequence, box.address


def test_R37_a_mailbox_sends_at_most_its_daily_limit_in_its_own_calendar_day(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    # Kiritimati is 14 hours ahead of UTC: its day starts at 10:00 UTC the day before.
    start = datetime(2026, 11, 2, 20, 0)  # Tuesday 10:00 there
    _world_with_mailbox(
        fresh_engine,
        people=5,
        now=start - timedelta(minutes=1),
        daily_limit=3,
        min_gap_seconds=0,
        time_zone="Pacific/Kiritimati",
    )
    mailer = _mailer(tmp_path)
    assert run_once(fresh_engine, mailer=mailer, now=start).sent == 3
    assert _statuses(fresh_engine) == {"sent": 3, "queued": 2}
    # A new day in UTC, still Tuesday (16:00) for the mailbox: nothing more.
    assert run_once(fresh_engine, mailer=mailer, now=start + timedelta(hours=6)).sent == 0
    assert _statuses(fresh_engine) == {"sent": 3, "queued": 2}
    # Wednesday 10:00 for the mailbox: the two that waited go, nothing was lost.
    assert run_once(fresh_engine, mailer=mailer, now=start + timedelta(days=1)).sent == 2
    assert _statuses(fresh_engine) == {"sent": 5}


def test_R37_two_emails_of_a_mailbox_are_never_closer_than_its_gap(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    _world_with_mailbox(
        fresh_engine,
        people=3,
        now=MONDAY - timedelta(minutes=1),
        daily_limit=50,
        min_gap_seconds=90,
        gap_jitter=0.5,
        time_zone="Europe/Berlin",
    )
    mailer = _mailer(tmp_path)
    assert run_once(fresh_engine, mailer=mailer, now=MONDAY).sent == 1
    assert run_once(fresh_engine, mailer=mailer, now=MONDAY + timedelta(seconds=89)).sent == 0
    # The jitter adds up to half the gap: by 135 s the next one may go, and does.
    assert run_once(fresh_engine, mailer=mailer, now=MONDAY + timedelta(seconds=135)).sent == 1
    assert run_once(fresh_engine, mailer=mailer, now=MONDAY + timedelta(seconds=200)).sent == 0
    assert run_once(fresh_engine, mailer=mailer, now=MONDAY + timedelta(seconds=271)).sent == 1
    assert _statuses(fresh_engine) == {"sent": 3}


def test_R40_a_paused_mailbox_sends_nothing_and_its_emails_wait_until_it_is_resumed(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    _, address = _world_with_mailbox(
        fresh_engine, people=4, now=MONDAY - timedelta(minutes=1), min_gap_seconds=0
    )
    with fresh_engine.begin() as db:
        paused = sender_mailboxes.pause(
            db,
            workspace_id=1,
            address=address,
            reason="warming up the domain",
            actor="admin@acme",
            now=MONDAY,
        )
    assert (paused.status, paused.pause_reason) == ("paused", "warming up the domain")
    mailer = _mailer(tmp_path)
    assert run_once(fresh_engine, mailer=mailer, now=MONDAY).sent == 0
    assert _statuses(fresh_engine) == {"queued": 4}
    with fresh_engine.begin() as db:
        sender_mailboxes.resume(db, workspace_id=1, address=address, actor="admin@acme", now=MONDAY)
        kinds = list(
            db.scalars(
                sa.select(t.events.c.kind)
                .where(t.events.c.kind.like("mailbox_%"))
                .order_by(t.events.c.id)
            )
        )
    assert kinds == ["mailbox_created", "mailbox_paused", "mailbox_resumed"]
    assert run_once(fresh_engine, mailer=mailer, now=MONDAY + timedelta(minutes=1)).sent == 4


def _senders(folder: Path) -> list[str]:
    return [
        str(email.message_from_bytes(p.read_bytes(), policy=policy.default)["From"])
        for p in sorted(folder.glob("*.eml"))
    ]


def test_R37_each_enrollment_keeps_one_mailbox_spread_by_free_capacity_or_its_owner(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    now = MONDAY - timedelta(minutes=1)
    with committed(fresh_engine, now) as world:
        for address, name, limit in (
            ("ann@acme-sales.com", "Ann Lee", 40),
            ("bob@acme-sales.com", "Bob Roy", 20),
            ("cy@acme-sales.com", "Cy Ng", 20),
        ):
            sender_mailboxes.create(
                world.db,
                workspace_id=world.ws,
                address=address,
                display_name=name,
                daily_limit=limit,
                min_gap_seconds=0,
                actor="admin@acme",
                now=now,
            )
        sequence = world.sequence(steps=TWO_EMAILS)
        sender_mailboxes.set_for_sequence(
            world.db,
            workspace_id=world.ws,
            sequence_id=sequence,
            addresses=["ann@acme-sales.com", "bob@acme-sales.com", "cy@acme-sales.com"],
            actor="admin@acme",
            now=now,
        )
        owned = world.person("owned@client.com", fields={"owner": "CY@acme-sales.com"})
        others = [world.person(f"p{i}@client{i}.com") for i in range(40)]
        world.enroll(sequence, [owned, *others])
    e, b = t.enrollments, t.mailboxes
    with fresh_engine.connect() as db:
        given = dict(
            db.execute(
                sa.select(e.c.person_id, b.c.address).join(b, b.c.id == e.c.mailbox_id)
            ).all()
        )
    assert given[owned] == "cy@acme-sales.com"
    shares = {a: sum(1 for p in others if given[p] == a) for a in set(given.values())}
    assert shares == {"ann@acme-sales.com": 20, "bob@acme-sales.com": 10, "cy@acme-sales.com": 10}
    mailer = _mailer(tmp_path)
    run_once(fresh_engine, mailer=mailer, now=MONDAY)
    first = _senders(tmp_path)
    assert sorted(set(first)) == [
        "Ann Lee <ann@acme-sales.com>",
        "Bob Roy <bob@acme-sales.com>",
        "Cy Ng <cy@acme-sales.com>",
    ]
    for path in tmp_path.glob("*.eml"):
        path.unlink()
    run_once(fresh_engine, mailer=mailer, now=MONDAY + timedelta(days=2, minutes=1))
    o, p = t.outbound_emails, t.people
    with fresh_engine.connect() as db:
        by_email = dict(
            db.execute(
                sa.select(p.c.email, b.c.address)
                .join(o, o.c.person_id == p.c.id)
                .join(b, b.c.id == o.c.mailbox_id)
                .where(o.c.status == "sent")
            ).all()
        )
    for message in (
        email.message_from_bytes(f.read_bytes(), policy=policy.default)
        for f in tmp_path.glob("*.eml")
    ):
        to = str(message["To"]).split("<")[-1].rstrip(">").strip()
        assert str(message["From"]).endswith(f"<{by_email[to]}>")


def test_R37_removing_a_mailbox_in_use_needs_the_mailbox_its_enrollments_move_to(
    fresh_engine: Engine,
) -> None:
    _, address = _world_with_mailbox(fresh_engine, people=3, now=MONDAY)
    with fresh_engine.begin() as db:
        with pytest.raises(Conflict, match="3 active enrollment"):
            removal.remove(db, workspace_id=1, address=address, actor="admin@acme", now=MONDAY)
        sender_mailboxes.create(
            db, workspace_id=1, address="bob@acme-sales.com", actor="admin@acme", now=MONDAY
        )
        removed = removal.remove(
            db,
            workspace_id=1,
            address=address,
            move_to="bob@acme-sales.com",
            actor="admin@acme",
            now=MONDAY,
        )
        assert removed.enrollments_moved == 3
        e, b = t.enrollments, t.mailboxes
        assert set(db.scalars(sa.select(b.c.address).join(e, e.c.mailbox_id == b.c.id))) == {
            "bob@acme-sales.com"
        }


def test_R37_a_mailbox_with_its_own_server_sends_through_it_and_signs_as_itself(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    own, relay = tmp_path / "own", tmp_path / "relay"
    now = MONDAY - timedelta(minutes=1)
    with committed(fresh_engine, now) as world:
        sender_mailboxes.create(
            world.db,
            workspace_id=world.ws,
            address="ann@acme-sales.com",
            signature="Ann Lee, Acme Sales",
            smtp_url=f"outbox://{own}",
            min_gap_seconds=0,
            actor="admin@acme",
            now=now,
        )
        signed = definitions.Step(
            kind="email", subject="Hello", body_text="Hi.\n\n{{ sender.signature }}"
        )
        for address, name in (("ann@acme-sales.com", "Ann"), ("sam@acme-sales.com", "Sam")):
            sequence = world.sequence(name, steps=[signed])
            sender_mailboxes.set_for_sequence(
                world.db,
                workspace_id=world.ws,
                sequence_id=sequence,
                addresses=[address],
                actor="admin@acme",
                now=now,
            )
            world.enroll(sequence, [world.person(f"lead-of-{name.lower()}@client.com")])
    assert run_once(fresh_engine, mailer=_mailer(relay), now=MONDAY).sent == 2
    (through_own,) = (
        email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in own.glob("*.eml")
    )
    (through_relay,) = (
        email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in relay.glob("*.eml")
    )
    assert str(through_own["From"]) == "ann@acme-sales.com"
    assert str(through_relay["From"]).endswith("<sam@acme-sales.com>")
    body = through_own.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Ann Lee, Acme Sales" in body.get_content()
