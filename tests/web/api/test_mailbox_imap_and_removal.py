"""A mailbox's own IMAP login and its removal over the JSON API (R37): the login is set
and changed by an admin, its password stored encrypted and never read back, a bad port
refused naming the input; a mailbox in use is removed by dealing its enrollments over
the other mailboxes of their sequence."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.crypto import new_key
from optout.db import tables as t
from optout.services.mailboxes import sender_mailboxes
from optout.web.app import create_app
from tests.factories import World
from tests.web.api.conftest import Api, error_of
from tests.web.conftest import KEYS, serving

Committed = Callable[[], AbstractContextManager[World]]


@pytest.fixture
def keyed_api(engine: Engine) -> Iterator[Api]:
    settings = Settings(database_url="unused://", secret_keys=KEYS, encryption_keys=(new_key(),))
    with serving(create_app(settings, engine)) as base:
        found = Api(base, engine)
        try:
            yield found
        finally:
            for client in found._clients:
                client.close()


def test_R37_an_admin_gives_a_mailbox_its_imap_login_and_the_password_is_never_read_back(
    keyed_api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = keyed_api.keys(world)
    admin, member = keyed_api.client(keys.admin), keyed_api.client(keys.member)
    made = admin.post(
        "/mailboxes",
        json={
            "address": "ann@acme-sales.com",
            "imap": {"host": "imap.acme-sales.com", "user": "ann", "password": "s3cret-imap"},
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["imap"] == "imap://ann@imap.acme-sales.com:993/INBOX"
    assert "s3cret-imap" not in made.text
    box = made.json()["id"]
    refused = admin.patch(
        f"/mailboxes/{box}",
        json={"imap": {"host": "imap.acme-sales.com", "user": "ann", "port": 0}},
    )
    assert refused.status_code == 422
    moved = admin.patch(
        f"/mailboxes/{box}",
        json={
            "address": "ann.lee@acme-sales.com",
            "imap": {"host": "mail.acme-sales.com", "user": "ann", "port": 143, "ssl": False},
        },
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["address"], moved.json()["imap"]) == (
        "ann.lee@acme-sales.com",
        "imap://ann@mail.acme-sales.com:143/INBOX",
    )
    read = member.get(f"/mailboxes/{box}")
    assert read.json()["imap"] == "imap://ann@mail.acme-sales.com:143/INBOX"
    assert "s3cret-imap" not in read.text
    with keyed_api.engine.connect() as db:
        stored = db.scalar(sa.select(t.mailboxes.c.imap_password).where(t.mailboxes.c.id == box))
    assert stored is not None
    assert "s3cret-imap" not in stored  # kept, encrypted, through the change
    assert member.patch(f"/mailboxes/{box}", json={"imap": None}).status_code == 403
    cleared = admin.patch(f"/mailboxes/{box}", json={"imap": None})
    assert cleared.json()["imap"] is None
    no_password = admin.patch(
        f"/mailboxes/{box}", json={"imap": {"host": "mail.acme-sales.com", "user": "ann"}}
    )
    assert no_password.status_code == 422
    assert "password" in error_of(no_password)["message"]


def test_R37_removing_a_mailbox_in_use_with_round_robin_deals_its_enrollments(
    keyed_api: Api, committed: Committed
) -> None:
    with committed() as world:
        sequence = world.sequence()
        sam = sender_mailboxes.row(world.db, workspace_id=world.ws, address="sam@acme-sales.com")[
            "id"
        ]
        ids = [
            sender_mailboxes.create(
                world.db, workspace_id=world.ws, address=a, actor="admin@acme", now=world.now
            ).id
            for a in ("ann@acme-sales.com", "bob@acme-sales.com")
        ]
        sender_mailboxes.attach(world.db, sequence_id=sequence, mailbox_ids=[sam, *ids])
        world.enroll(sequence, [world.person(f"lead{i}@client.com") for i in range(4)])
        e = t.enrollments
        world.db.execute(e.update().where(e.c.sequence_id == sequence).values(mailbox_id=sam))
        keys = keyed_api.keys(world)
    admin = keyed_api.client(keys.admin)
    both = admin.delete(
        f"/mailboxes/{sam}", params={"round_robin": "true", "move_to": "ann@acme-sales.com"}
    )
    assert both.status_code == 422
    removed = admin.delete(f"/mailboxes/{sam}", params={"round_robin": "true"})
    assert removed.json() == {
        "address": "sam@acme-sales.com",
        "moved_to": None,
        "enrollments_moved": 4,
        "round_robin": True,
    }
    listed = {m["address"]: m for m in admin.get("/mailboxes").json()["items"]}
    assert sorted(listed) == ["ann@acme-sales.com", "bob@acme-sales.com"]
    assert listed["ann@acme-sales.com"]["queued"] == 2
    assert listed["bob@acme-sales.com"]["queued"] == 2
