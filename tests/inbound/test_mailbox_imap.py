"""Replies come back to the rep's own mailbox: each sender mailbox with its own IMAP
login is read by the poller, against a real IMAP server (Dovecot on loopback), and a
reply that arrives in a mailbox ends the enrollment it answers, in the mailbox's own
workspace; a mailbox whose login is refused does not stop the others (R37)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.crypto import new_key
from optout.db import tables as t
from optout.inbound import mailbox_polling
from optout.services.mailboxes import sender_mailboxes
from optout.services.mailboxes.imap_logins import ImapLogin
from tests.factories import World
from tests.inbound.helpers import OPTIONS, TWO_EMAILS, reply, send_due
from tests.inbound.imap_server import Dovecot, dovecot_server
from tests.sending.smtp_server import HOST

T0 = datetime(2026, 11, 2, 9, 0)
KEYS = (new_key(),)
REPS = {"rep-ann": "ann-imap-secret", "rep-bob": "bob-imap-secret", "rep-cy": "cy-imap-secret"}


@pytest.fixture
def imap_server() -> Iterator[Dovecot]:
    with dovecot_server(REPS) as server:
        yield server


def _mailbox(world: World, address: str, server: Dovecot, user: str, password: str) -> int:
    return sender_mailboxes.create(
        world.db,
        workspace_id=world.ws,
        address=address,
        min_gap_seconds=0,
        imap=ImapLogin(host=HOST, port=server.port, user=user, password=password, ssl=False),
        keys=KEYS,
        actor="admin@acme",
        now=world.now,
    ).id


def _sent_from(world: World, sending: dict[str, int]) -> dict[str, tuple[int, str]]:
    """Enroll each person on their mailbox and send the first emails: person -> (enrollment
    id, Message-ID of the email sent)."""
    sequence = world.sequence("Outbound", steps=TWO_EMAILS)
    sender_mailboxes.attach(world.db, sequence_id=sequence, mailbox_ids=list(set(sending.values())))
    people = {email: world.person(email) for email in sending}
    world.enroll(sequence, list(people.values()))
    e = t.enrollments
    for email, mailbox in sending.items():
        world.db.execute(
            e.update().where(e.c.person_id == people[email]).values(mailbox_id=mailbox)
        )
    sent = send_due(world.db, world.now)
    ids = dict(
        world.db.execute(sa.select(e.c.person_id, e.c.id).where(e.c.sequence_id == sequence)).all()
    )
    return {email: (ids[pid], sent[pid]) for email, pid in people.items()}


def _status(engine: Engine, enrollment_id: int) -> str:
    with engine.connect() as db:
        return str(
            db.scalar(sa.select(t.enrollments.c.status).where(t.enrollments.c.id == enrollment_id))
        )


def test_R37_a_reply_in_each_rep_s_own_mailbox_ends_the_enrollment_it_answers(
    fresh_engine: Engine, imap_server: Dovecot
) -> None:
    with fresh_engine.begin() as db:
        acme = World(db, T0, slug="acme-sales")
        ann = _mailbox(acme, "ann@acme-sales.com", imap_server, "rep-ann", REPS["rep-ann"])
        bob = _mailbox(acme, "bob@acme-sales.com", imap_server, "rep-bob", REPS["rep-bob"])
        # A mailbox whose password is wrong: it is told, and the others are read.
        _mailbox(acme, "old@acme-sales.com", imap_server, "rep-bob", "not-the-password")
        acme_sent = _sent_from(acme, {"kim@client.com": ann, "lou@client.com": bob})
        globex = World(db, T0, slug="globex")
        cy = _mailbox(globex, "cy@globex.io", imap_server, "rep-cy", REPS["rep-cy"])
        globex_sent = _sent_from(globex, {"kim@client.com": cy, "mo@client.com": cy})
        workspaces = {"acme": acme.ws, "globex": globex.ws}

    boxes = {user: imap_server.login(user, password) for user, password in REPS.items()}
    boxes["rep-ann"].append(
        reply(
            sender="kim@client.com", body="Sounds good", in_reply_to=acme_sent["kim@client.com"][1]
        )
    )
    boxes["rep-bob"].append(
        reply(sender="lou@client.com", body="Call me", in_reply_to=acme_sent["lou@client.com"][1])
    )
    boxes["rep-cy"].append(
        reply(
            sender="mo@client.com", body="Tell me more", in_reply_to=globex_sent["mo@client.com"][1]
        )
    )

    polled = mailbox_polling.poll_once(
        fresh_engine, keys=KEYS, options=OPTIONS, clock=lambda: T0 + timedelta(hours=1), timeout=10
    )

    by_address = {p.address: p for p in polled}
    assert sorted(by_address) == [
        "ann@acme-sales.com",
        "bob@acme-sales.com",
        "cy@globex.io",
        "old@acme-sales.com",
    ]
    assert by_address["old@acme-sales.com"].result is None
    assert "IMAP" in by_address["old@acme-sales.com"].error
    for address in ("ann@acme-sales.com", "bob@acme-sales.com", "cy@globex.io"):
        result = by_address[address].result
        assert result is not None
        assert (result.fetched, result.processed, result.failed) == (1, 1, 0)
        assert [r.outcome for r in result.results] == ["replied"]
    assert _status(fresh_engine, acme_sent["kim@client.com"][0]) == "replied"
    assert _status(fresh_engine, acme_sent["lou@client.com"][0]) == "replied"
    assert _status(fresh_engine, globex_sent["mo@client.com"][0]) == "replied"
    # Kim has an enrollment in the other workspace too: Kim's reply to Acme leaves it be.
    assert _status(fresh_engine, globex_sent["kim@client.com"][0]) == "in_progress"
    for box in ("rep-ann", "rep-bob", "rep-cy"):
        assert boxes[box].unseen() == []
    m = t.inbound_messages
    with fresh_engine.connect() as db:
        stored = sorted(db.execute(sa.select(m.c.workspace_id, m.c.outcome)).all())
    assert [tuple(r) for r in stored] == sorted(
        [
            (workspaces["acme"], "replied"),
            (workspaces["acme"], "replied"),
            (workspaces["globex"], "replied"),
        ]
    )

    # The next pass finds nothing new in any mailbox.
    again = mailbox_polling.poll_once(fresh_engine, keys=KEYS, options=OPTIONS, timeout=10)
    assert [p.result.fetched for p in again if p.result is not None] == [0, 0, 0]
