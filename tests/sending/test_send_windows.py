"""Sending windows in each recipient's time zone and threaded follow-ups, through the
worker into a real SMTP server on loopback (R38, R39)."""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.inbound.match import Target, match_reply
from optout.inbound.parse import parse_message
from optout.mail.windows import ANY_TIME, BUSINESS_HOURS, Schedule
from optout.sending.send_time import window_text
from optout.sending.transports import SmtpTransport
from optout.sending.worker import Mailer, run_once
from optout.services.sequences import definitions, edits
from tests.factories import World
from tests.sending.smtp_server import HOST, Recorder, smtp_server

KEYS = ("windows-test-secret-key-0123456789",)
SATURDAY = datetime(2026, 11, 7, 12, 0)  # UTC
STEPS = (
    definitions.Step(
        kind="email", subject="Quick question, {{ person.first_name }}", body_text="Hi"
    ),
    definitions.Step(kind="wait", wait_seconds=86400),
    definitions.Step(kind="email", subject="", body_text="Following up."),
)
ZONES = {"ann@acme.com": "Europe/Berlin", "bob@acme.com": "America/New_York", "cy@acme.com": None}


def _build(engine: Engine, schedule: Schedule) -> int:
    with engine.begin() as db:
        world = World(db, SATURDAY)
        world.ruleset()
        sequence_id = definitions.create(
            db,
            workspace_id=world.ws,
            name="Outbound",
            ruleset="Default",
            steps=STEPS,
            from_address="Sam Seller <sam@acme-sales.com>",
            now=SATURDAY,
            schedule=schedule,
        )
        people = [world.person(address, first_name=address[:3].title()) for address in ZONES]
        for person_id, zone in zip(people, ZONES.values(), strict=True):
            if zone:
                db.execute(
                    t.people.update().where(t.people.c.id == person_id).values(time_zone=zone)
                )
        world.enroll(sequence_id, people)
        return world.ws


def _run_until(engine: Engine, port: int, start: datetime, end: datetime) -> None:
    settings = Settings(database_url="unused://", secret_keys=KEYS)
    moment = start
    with SmtpTransport(HOST, port, security="none", timeout=10, retries=2) as transport:
        while moment <= end:
            run_once(engine, mailer=Mailer(settings, transport), now=moment)
            moment += timedelta(minutes=30)


def _sent(engine: Engine) -> dict[str, list[datetime]]:
    o, p = t.outbound_emails, t.people
    with engine.connect() as db:
        rows = db.execute(
            sa.select(p.c.email, o.c.sent_at)
            .join(p, p.c.id == o.c.person_id)
            .where(o.c.status == "sent")
            .order_by(o.c.sent_at)
        ).all()
    found: dict[str, list[datetime]] = {}
    for address, sent_at in rows:
        found.setdefault(address, []).append(sent_at)
    return found


def _messages(handler: Recorder) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for received in handler.received:
        message = email.message_from_bytes(received.content, policy=policy.default)
        found.setdefault(received.recipients[0], []).append(message)  # type: ignore[arg-type]
    return found


def test_R38_R39_each_recipient_gets_mail_in_their_own_hours_and_follow_ups_in_one_thread(
    fresh_engine: Engine,
) -> None:
    ws = _build(fresh_engine, Schedule(business_day_waits=True))
    handler = Recorder()
    with smtp_server(handler) as port:
        _run_until(fresh_engine, port, SATURDAY, SATURDAY + timedelta(days=4))

    sent = _sent(fresh_engine)
    # Nothing over the weekend; Monday 9 November 09:00 in each zone, the follow-up one
    # sending day later at the same hour (the first pass at or after it).
    assert sent == {
        "ann@acme.com": [datetime(2026, 11, 9, 8, 0), datetime(2026, 11, 10, 8, 0)],
        "bob@acme.com": [datetime(2026, 11, 9, 14, 0), datetime(2026, 11, 10, 14, 0)],
        "cy@acme.com": [datetime(2026, 11, 9, 9, 0), datetime(2026, 11, 10, 9, 0)],
    }
    for address, moments in sent.items():
        where = ZoneInfo(ZONES[address] or "UTC")
        for moment in moments:
            wall = moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(where)
            assert wall.weekday() < 5, (address, wall)
            assert 9 <= wall.hour < 17, (address, wall)

    messages = _messages(handler)
    for address in ZONES:
        first, follow_up = messages[address]
        name = address[:3].title()
        assert first["Subject"] == f"Quick question, {name}"
        assert first["In-Reply-To"] is None
        assert follow_up["Subject"] == f"Re: Quick question, {name}"
        assert follow_up["In-Reply-To"] == first["Message-ID"]
        assert follow_up["References"] == first["Message-ID"]

    # A reply to the second email of Ann's thread finds her enrollment.
    first, follow_up = messages["ann@acme.com"]
    reply = (
        "From: Ann <ann@acme.com>\r\nTo: sam@acme-sales.com\r\n"
        f"Subject: Re: Quick question, Ann\r\nMessage-ID: <reply-1@acme.com>\r\n"
        f"In-Reply-To: {follow_up['Message-ID']}\r\n"
        f"References: {first['Message-ID']} {follow_up['Message-ID']}\r\n\r\nSounds good.\r\n"
    ).encode()
    with fresh_engine.connect() as db:
        found = match_reply(
            db,
            parse_message(reply),
            workspace_id=ws,
            tokens=None,
            mailto_token="",
            now=SATURDAY + timedelta(days=4),
            window=timedelta(days=30),
        )
        o, p = t.outbound_emails, t.people
        second_email, enrollment = db.execute(
            sa.select(o.c.id, o.c.enrollment_id)
            .join(p, p.c.id == o.c.person_id)
            .where(p.c.email == "ann@acme.com", o.c.message_id == follow_up["Message-ID"])
        ).one()
    assert isinstance(found, Target)
    assert (found.enrollment_id, found.email_id, found.by) == (
        enrollment,
        second_email,
        "in_reply_to",
    )


def test_R38_a_new_schedule_moves_queued_emails_and_the_worker_never_sends_outside_it(
    fresh_engine: Engine,
) -> None:
    ws = _build(fresh_engine, ANY_TIME)
    o = t.outbound_emails
    with fresh_engine.connect() as db:
        assert set(db.scalars(sa.select(o.c.due_at))) == {SATURDAY}
    with fresh_engine.begin() as db:
        sequence_id = definitions.spec_by_name(db, workspace_id=ws, name="Outbound").id
        edits.update_settings(
            db,
            workspace_id=ws,
            sequence_id=sequence_id,
            changes={"schedule": BUSINESS_HOURS},
            actor="admin@acme-sales.com",
            now=SATURDAY,
        )
        due = dict(
            db.execute(
                sa.select(t.people.c.email, o.c.due_at).join(
                    t.people, t.people.c.id == o.c.person_id
                )
            ).all()
        )
    assert due == {
        "ann@acme.com": datetime(2026, 11, 9, 8, 0),
        "bob@acme.com": datetime(2026, 11, 9, 14, 0),
        "cy@acme.com": datetime(2026, 11, 9, 9, 0),
    }
    # Something that knows no windows makes Ann's email due on Sunday (a retry, a
    # release): the worker's pass moves it to Monday 09:00 instead of sending it.
    with fresh_engine.begin() as db:
        db.execute(o.update().values(due_at=SATURDAY + timedelta(hours=20)))
    handler = Recorder()
    with smtp_server(handler) as port:
        _run_until(fresh_engine, port, SATURDAY + timedelta(days=1), SATURDAY + timedelta(days=1))
        assert handler.received == []
        with fresh_engine.connect() as db:
            assert (
                dict(
                    db.execute(
                        sa.select(t.people.c.email, o.c.due_at).join(
                            t.people, t.people.c.id == o.c.person_id
                        )
                    ).all()
                )
                == due
            )
        _run_until(fresh_engine, port, datetime(2026, 11, 9, 8, 0), datetime(2026, 11, 9, 8, 0))
    assert [r.recipients for r in handler.received] == [["ann@acme.com"]]


def test_R38_explain_says_when_the_next_window_opens_in_the_recipients_zone(
    fresh_engine: Engine,
) -> None:
    _build(fresh_engine, BUSINESS_HOURS)
    with fresh_engine.connect() as db:
        sequence_id = db.scalar(sa.select(t.sequences.c.id))
        ids = dict(db.execute(sa.select(t.people.c.email, t.people.c.id)).all())

        def said(address: str, now: datetime) -> str:
            return window_text(db, person_id=ids[address], sequence_id=sequence_id, now=now)

        assert said("ann@acme.com", SATURDAY) == "in the next window, Mon 09:00 Europe/Berlin"
        assert said("bob@acme.com", SATURDAY) == "in the next window, Mon 09:00 America/New_York"
        assert said("cy@acme.com", SATURDAY) == "in the next window, Mon 09:00 UTC"
        monday_ten_berlin = datetime(2026, 11, 9, 9, 0)
        assert said("ann@acme.com", monday_ten_berlin) == (
            "now, inside its sending hours (Mon-Fri 09:00-17:00 Europe/Berlin)"
        )
        # At that moment it is 04:00 in New York: Bob waits until 09:00 there.
        assert said("bob@acme.com", monday_ten_berlin) == (
            "in the next window, Mon 09:00 America/New_York"
        )
