"""`optout mailbox` and `optout inbound mailboxes` on each database (R37): a mailbox is
given its own IMAP login (the password from the environment, stored encrypted and never
shown), the poller reads the reply that arrived there and ends its enrollment; a mailbox
in use is removed by dealing its enrollments over the sequence's other mailboxes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from optout.crypto import new_key
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.services.mailboxes import sender_mailboxes
from tests.cli.conftest import STEPS, Cli
from tests.inbound.helpers import KEYS, reply, sent_world
from tests.inbound.imap_server import Dovecot, dovecot_server
from tests.sending.smtp_server import HOST

REP, SECRET = "rep-sam", "sam-imap-secret"


@pytest.fixture
def imap_server() -> Iterator[Dovecot]:
    with dovecot_server({REP: SECRET}) as server:
        yield server.login(REP, SECRET)


def test_R37_a_mailbox_s_own_imap_login_brings_its_replies_in(
    cli: Cli, imap_server: Dovecot
) -> None:
    with cli.seed() as world:
        message_ids = sent_world(world).message_ids
    keys = {"OPTOUT_ENCRYPTION_KEYS": new_key(), "OPTOUT_SECRET_KEYS": ",".join(KEYS)}
    nothing = cli.run("inbound", "mailboxes", "--once", **keys)
    assert nothing.exit_code == 0, nothing.stderr
    assert "No mailbox has an IMAP login" in nothing.stdout

    edited = cli.run(
        "mailbox", "edit", "sam@acme-sales.com", "--imap-host", HOST, "--imap-port",
        str(imap_server.port), "--imap-no-ssl", "--imap-user", REP, "--json",
        **keys, OPTOUT_MAILBOX_IMAP_PASSWORD=SECRET,
    )  # fmt: skip
    assert edited.exit_code == 0, edited.stderr
    assert json.loads(edited.stdout)["imap"] == f"imap://{REP}@{HOST}:{imap_server.port}/INBOX"
    assert SECRET not in cli.run("mailbox", "list", "--json").stdout
    stored = cli.scalar(
        sa.select(t.mailboxes.c.imap_password).where(t.mailboxes.c.address == "sam@acme-sales.com")
    )
    assert stored is not None
    assert SECRET not in stored

    imap_server.append(
        reply(sender="ben@acme.com", body="Yes, call me", in_reply_to=message_ids["ben"])
    )
    polled = cli.run("inbound", "mailboxes", "--once", **keys)
    assert polled.exit_code == 0, polled.stderr
    assert "sam@acme-sales.com: fetched 1, processed 1" in polled.stdout
    assert "reply → replied" in polled.stdout
    assert imap_server.unseen() == []
    e, p = t.enrollments, t.people
    status = cli.scalar(
        sa.select(e.c.status).join(p, p.c.id == e.c.person_id).where(p.c.email == "ben@acme.com")
    )
    assert status == "replied"


def test_R37_removing_a_mailbox_in_use_deals_its_enrollments_over_the_sequence_s_others(
    cli: Cli,
) -> None:
    with cli.seed() as world:
        outbound = world.sequence(steps=STEPS)
        partners = world.sequence("Partners", steps=STEPS)
        sam = sender_mailboxes.row(world.db, workspace_id=world.ws, address="sam@acme-sales.com")[
            "id"
        ]
        ann = sender_mailboxes.create(
            world.db,
            workspace_id=world.ws,
            address="ann@acme-sales.com",
            actor="admin@acme",
            now=world.now,
        ).id
        sender_mailboxes.attach(world.db, sequence_id=outbound, mailbox_ids=[sam, ann])
        world.enroll(outbound, [world.person(f"lead{i}@client.com") for i in range(4)])
        world.enroll(partners, [world.person("partner@client.com")])
        e = t.enrollments
        world.db.execute(e.update().values(mailbox_id=sam))
    refused = cli.run("mailbox", "remove", "sam@acme-sales.com", "--round-robin")
    assert refused.exit_code != 0
    assert "“Partners” send from no other mailbox" in refused.stderr
    partners_id = cli.scalar(sa.select(t.sequences.c.id).where(t.sequences.c.name == "Partners"))
    engine = create_engine(cli.url)
    try:
        with engine.begin() as db:
            db.execute(
                t.sequence_mailboxes.insert().values(sequence_id=partners_id, mailbox_id=ann)
            )
    finally:
        engine.dispose()
    removed = cli.ok("mailbox", "remove", "sam@acme-sales.com", "--round-robin")
    assert "5 enrollment(s) were dealt over the other mailboxes" in removed.stdout
    b = t.mailboxes
    senders = cli.scalar(
        sa.select(sa.func.count(sa.distinct(e.c.id))).where(
            e.c.mailbox_id
            == sa.select(b.c.id).where(b.c.address == "ann@acme-sales.com").scalar_subquery()
        )
    )
    assert senders == 5
    assert cli.scalar(sa.select(sa.func.count()).where(e.c.mailbox_id.is_(None))) == 0
