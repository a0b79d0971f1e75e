"""Migration 0020: a mailbox's own IMAP login. Existing mailboxes get none (TLS on, the
INBOX folder), and both databases go down and up again keeping every mailbox and the
mailbox of every enrollment (R37)."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.db.migrate import downgrade, upgrade
from optout.services.mailboxes import sender_mailboxes
from tests.factories import World

NOW = datetime(2026, 11, 2, 9, 0, 0)
BEFORE = "0019_automatic_enrollment"
IMAP = {"imap_host", "imap_port", "imap_user", "imap_password", "imap_ssl", "imap_folder"}


def _columns(engine: Engine) -> set[str]:
    with engine.connect() as db:
        return {c["name"] for c in sa.inspect(db).get_columns("mailboxes")}


def _given(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as db:
        return [
            (str(r[0]), str(r[1]))
            for r in db.execute(
                sa.text(
                    "SELECT p.email, m.address FROM enrollments e JOIN people p ON "
                    "p.id = e.person_id JOIN mailboxes m ON m.id = e.mailbox_id ORDER BY p.email"
                )
            )
        ]


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_R37_mailboxes_and_their_enrollments_survive_the_imap_migration_down_and_up(
    fresh_engine: Engine,
) -> None:
    with fresh_engine.begin() as db:
        world = World(db, NOW)
        sequence = world.sequence()
        ann = world.person("ann@client.com")
        ben = world.person("ben@client.com")
        world.enroll(sequence, [ann, ben])
    before = _given(fresh_engine)
    assert before == [
        ("ann@client.com", "sam@acme-sales.com"),
        ("ben@client.com", "sam@acme-sales.com"),
    ]
    downgrade(fresh_engine, BEFORE)
    assert not IMAP & _columns(fresh_engine)
    assert _given(fresh_engine) == before
    upgrade(fresh_engine)
    assert _columns(fresh_engine) >= IMAP
    assert _given(fresh_engine) == before
    b = t.mailboxes
    with fresh_engine.connect() as db:
        login = db.execute(
            sa.select(b.c.imap_host, b.c.imap_password, b.c.imap_ssl, b.c.imap_folder)
        ).one()
        box = sender_mailboxes.get(db, workspace_id=world.ws, address="sam@acme-sales.com", now=NOW)
    assert tuple(login) == (None, None, True, "INBOX")
    assert box.address == "sam@acme-sales.com"
