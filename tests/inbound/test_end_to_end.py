"""Inbound mail end to end, on SQLite and PostgreSQL: the worker sends over real SMTP,
recipients answer over real SMTP to the inbound listener, and what comes back changes
what is sent next (R4, R5, R6, R7, R21, R35)."""

from __future__ import annotations

import email
import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.inbound.listing import list_messages
from optout.inbound.smtp import InboundSmtpServer
from optout.sending.transports import SmtpTransport
from optout.sending.worker import Mailer, run_once
from optout.services import events
from optout.services.directory import people
from optout.services.exclusions import saves
from optout.services.sequences import definitions
from tests.factories import World
from tests.inbound.helpers import KEYS, OPTIONS, TWO_EMAILS, corpus, readdress, reply
from tests.sending.smtp_server import HOST, Recorder, free_port, smtp_server

T0 = datetime(2026, 11, 2, 9, 0)
WEBINAR = (  # starts with a delay, so its first email goes out in a later pass
    definitions.Step(kind="wait", wait_seconds=3600),
    definitions.Step(kind="email", subject="Webinar invite", body_text="Join us on the 20th?"),
    definitions.Step(kind="wait", wait_seconds=5 * 86400),
    definitions.Step(kind="email", subject="Webinar reminder", body_text="Starting soon."),
)


@dataclass
class Clock:
    now: datetime = T0


@dataclass
class Scene:
    engine: Engine
    ids: dict[str, int]
    clock: Clock
    outbox: Recorder
    inbound_port: int
    mailer: Mailer

    def send(self, at: datetime) -> int:
        self.clock.now = at
        return run_once(self.engine, mailer=self.mailer, now=at).sent

    def message_id(self, to: str, subject: str) -> str:
        for received in self.outbox.received:
            parsed = email.message_from_bytes(received.content, policy=policy.default)
            if received.recipients == [to] and parsed["Subject"] == subject:
                return str(parsed["Message-ID"])
        raise AssertionError(f"nothing sent to {to} with subject {subject!r}")

    def deliver(self, raw: bytes, *, at: datetime, sender: str) -> tuple[int, bytes]:
        """Hand a message to our inbound listener over SMTP, as the recipient's server would."""
        self.clock.now = at
        wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # SMTP lines end in CRLF
        with smtplib.SMTP(HOST, self.inbound_port, timeout=10) as client:
            client.ehlo()
            client.mail(sender)
            client.rcpt("sam@acme-sales.com")
            return client.data(wire)

    def status(self, name: str, sequence: str) -> str:
        e = t.enrollments
        with self.engine.connect() as db:
            return str(
                db.scalar(
                    sa.select(e.c.status).where(
                        e.c.person_id == self.ids[name], e.c.sequence_id == self.ids[sequence]
                    )
                )
            )

    def person(self, name: str) -> dict[str, object]:
        with self.engine.connect() as db:
            return dict(people.get(db, workspace_id=self.ids["ws"], person_id=self.ids[name]))

    def sent_to(self, subject: str) -> list[str]:
        found = []
        for received in self.outbox.received:
            parsed = email.message_from_bytes(received.content, policy=policy.default)
            if parsed["Subject"] == subject:
                found.extend(received.recipients)
        return sorted(found)


def _build(engine: Engine) -> dict[str, int]:
    with engine.begin() as db:
        world = World(db, T0)
        world.company("acme.com", "Acme Corp")
        world.company("globex.io", "Globex")
        ids = {
            name: world.person(f"{name}@{domain}", company=domain, first_name=name.title())
            for name, domain in (
                ("ann", "acme.com"),
                ("ben", "acme.com"),
                ("cat", "globex.io"),
                ("dee", "globex.io"),
            )
        }
        ids["Outbound"] = world.sequence("Outbound", steps=TWO_EMAILS)
        ids["Webinar"] = world.sequence("Webinar", steps=WEBINAR)
        world.enroll(ids["Outbound"], [ids["ann"], ids["ben"], ids["cat"], ids["dee"]])
        world.enroll(ids["Webinar"], [ids["ann"], ids["ben"]])
        ids["ws"] = world.ws
    return ids


@contextmanager
def scene(engine: Engine) -> Iterator[Scene]:
    ids = _build(engine)
    clock = Clock()
    outbox = Recorder()
    port = free_port()
    listener = InboundSmtpServer(
        engine, host=HOST, port=port, options=OPTIONS, clock=lambda: clock.now
    )
    with smtp_server(outbox) as outbound_port, listener:
        transport = SmtpTransport(HOST, outbound_port, security="none", timeout=5)
        settings = Settings(database_url="unused://", secret_keys=KEYS)
        try:
            yield Scene(engine, ids, clock, outbox, port, Mailer(settings, transport))
        finally:
            transport.close()


def test_R5_R6_R7_R21_replies_auto_replies_and_bounces_change_what_is_sent_next(
    fresh_engine: Engine,
) -> None:
    with scene(fresh_engine) as s:
        # The first email of each sequence goes out over SMTP.
        assert s.send(T0) == 4
        assert s.send(T0 + timedelta(hours=1)) == 2
        ann_outbound = s.message_id("ann@acme.com", "Quick question")

        # R5: Ann answers her Outbound email. Only that enrollment ends.
        code, text = s.deliver(
            reply(
                sender="Ann <ann@acme.com>",
                body="Interesting - can we talk Thursday?",
                in_reply_to=ann_outbound,
            ),
            at=T0 + timedelta(hours=2),
            sender="ann@acme.com",
        )
        assert (code, text) == (250, b"2.0.0 Accepted: reply, replied")
        assert s.status("ann", "Outbound") == "replied"
        assert s.status("ann", "Webinar") == "in_progress"
        assert s.status("ben", "Outbound") == "in_progress"

        # R21: the reply is activity from source `email`; our sends are not.
        ann, ben = s.person("ann"), s.person("ben")
        assert ann["last_replied_at"] == ann["last_activity_at"] == T0 + timedelta(hours=2)
        assert ben["last_activity_at"] is None
        assert ben["last_activity_any_at"] == T0 + timedelta(hours=1)

        # R7: Cat's out-of-office changes nothing.
        ooo = readdress(
            corpus("ooo_sieve_vacation.eml"),
            In_Reply_To=s.message_id("cat@globex.io", "Quick question"),
        )
        assert s.deliver(ooo, at=T0 + timedelta(hours=2, minutes=30), sender="")[0] == 250
        assert s.status("cat", "Outbound") == "in_progress"
        assert s.person("cat")["last_replied_at"] is None

        # R7: a DSN says Dee's address does not exist: bounced, never sent to again.
        dsn = corpus("bounce_postfix_dsn.eml").replace(
            b"<6e5d4c3b-2a19-5087-96a5-b4c3d2e1f0a9@acme-sales.com>",
            s.message_id("dee@globex.io", "Quick question").encode(),
        )
        assert s.deliver(dsn, at=T0 + timedelta(hours=3), sender="")[0] == 250
        assert s.status("dee", "Outbound") == "bounced"

        # R5: the next pass still sends step 2 to Ben (and Cat), not to Ann or Dee.
        assert s.send(T0 + timedelta(days=2)) == 2
        assert s.sent_to("Following up") == ["ben@acme.com", "cat@globex.io"]
        assert s.status("ben", "Outbound") == "finished"

        # R6: a company rule on reply activity, enforced in every sequence ...
        with fresh_engine.begin() as db:
            saves.create(
                db,
                workspace_id=s.ids["ws"],
                name="Replied in the last 30 days",
                level="company",
                filter="company.last_replied_at within last 30 days",
                exclude_from_sequences=True,
                actor="ops@acme-sales.com",
                now=T0 + timedelta(days=2, hours=1),
                confirm=True,
            )
        assert s.status("ben", "Webinar") == "in_progress"  # saved without unenroll-on-save
        # ... removes Ben from the Webinar the moment Ann replies there.
        code, _ = s.deliver(
            reply(
                sender="ann@acme.com",
                body="Count me in for the webinar.",
                in_reply_to=s.message_id("ann@acme.com", "Webinar invite"),
            ),
            at=T0 + timedelta(days=2, hours=2),
            sender="ann@acme.com",
        )
        assert code == 250
        assert s.status("ann", "Webinar") == "replied"
        assert s.status("ben", "Webinar") == "unenrolled"
        assert s.send(T0 + timedelta(days=7)) == 0
        assert s.sent_to("Webinar reminder") == []

    with fresh_engine.connect() as db:
        ws = s.ids["ws"]
        ben_history = events.history(db, workspace_id=ws, person_id=s.ids["ben"])
        removal = [e for e in ben_history if e.kind == "enrollment_ended"]
        assert [e.rule for e in removal] == ["exclusion_monitor"]  # R35: why Ben left
        stored = list_messages(db, workspace_id=ws)
        assert [m.result.outcome for m in reversed(stored)] == [
            "replied",
            "auto_reply",
            "bounced",
            "replied",
        ]
        assert list_messages(db, workspace_id=ws, unmatched=True) == []
        x = t.suppressions
        assert db.execute(sa.select(x.c.email, x.c.kind)).all() == [("dee@globex.io", "bounce")]


def test_R4_unsubscribe_reply_over_smtp_stops_all_email_to_the_person(
    fresh_engine: Engine,
) -> None:
    with scene(fresh_engine) as s:
        s.send(T0)
        s.send(T0 + timedelta(hours=1))
        raw = readdress(
            corpus("unsubscribe_outlook_german.eml"),
            From="Ben <ben@acme.com>",
            In_Reply_To=s.message_id("ben@acme.com", "Quick question"),
        )
        code, text = s.deliver(raw, at=T0 + timedelta(hours=2), sender="ben@acme.com")
        assert (code, text) == (250, b"2.0.0 Accepted: unsubscribe, opted_out")
        assert s.status("ben", "Outbound") == "replied"
        assert s.status("ben", "Webinar") == "opted_out"
        s.send(T0 + timedelta(days=7))
        assert "ben@acme.com" not in s.sent_to("Following up") + s.sent_to("Webinar reminder")
        assert s.sent_to("Following up") == ["ann@acme.com", "cat@globex.io", "dee@globex.io"]
