"""A sequence's Mailboxes tab: an admin chooses the mailboxes it sends from; new
enrollments are dealt over them, started ones keep theirs; an empty choice, another
workspace's mailbox and a member who is not an admin are refused (R37)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.services.enrollments import enrolling
from optout.services.mailboxes import sender_mailboxes
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in
from tests.web.test_complaint_rates import PASSWORD


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _sign_in(web: Web, slug: str, user: str) -> str:
    token = csrf_token_in(web.http.get("/login").text)
    web.http.post(
        "/login", data={"workspace": slug, "email": user, "password": PASSWORD, "csrf_token": token}
    )
    return csrf_token_in(web.http.get("/").text)


def _senders(engine: Engine, sequence_id: int) -> dict[str, str]:
    """Each enrolled person's mailbox address."""
    e, p, b = t.enrollments, t.people, t.mailboxes
    with engine.connect() as db:
        rows = db.execute(
            sa.select(p.c.email, b.c.address)
            .join(p, p.c.id == e.c.person_id)
            .join(b, b.c.id == e.c.mailbox_id)
            .where(e.c.sequence_id == sequence_id)
        ).all()
    return {str(email): str(address) for email, address in rows}


def test_R37_an_admin_chooses_the_mailboxes_a_sequence_sends_from_on_its_tab(
    web: Web, committed: Callable[[], AbstractContextManager[World]], engine: Engine
) -> None:
    admin = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    member = f"member-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        for user, role in ((admin, "admin"), (member, "member")):
            accounts.create_user(world.db, email=user, name="U", password=PASSWORD, now=world.now)
            accounts.set_member(world.db, workspace_id=world.ws, email=user, role=role)
        for address in ("ann@acme-sales.com", "bob@acme-sales.com"):
            sender_mailboxes.create(
                world.db, workspace_id=world.ws, address=address, actor="t", now=world.now
            )
        sequence_id = world.sequence("Outbound")  # from sam@acme-sales.com
        early = world.person("early@client.com")
        world.enroll(sequence_id, [early])
        later = [world.person(f"p{i}@client.com") for i in range(4)]
        slug = world.workspace.slug
    with committed() as other:
        sender_mailboxes.create(
            other.db, workspace_id=other.ws, address="eve@other.com", actor="t", now=other.now
        )

    token = _sign_in(web, slug, admin)
    tab = web.http.get(f"/sequences/{sequence_id}/mailboxes")
    assert tab.status_code == 200
    shown = _text(tab.text)
    for address in ("ann@acme-sales.com", "bob@acme-sales.com", "sam@acme-sales.com"):
        assert address in shown
    assert re.search(r'value="sam@acme-sales.com" [^>]*checked', tab.text)
    assert not re.search(r'value="ann@acme-sales.com" [^>]*checked', tab.text)

    refused = web.http.post(f"/sequences/{sequence_id}/mailboxes", data={"csrf_token": token})
    assert refused.status_code == 422
    assert "Not saved. a sequence needs at least one mailbox to send from" in _text(refused.text)
    foreign = web.http.post(
        f"/sequences/{sequence_id}/mailboxes",
        data={"csrf_token": token, "mailbox": ["ann@acme-sales.com", "eve@other.com"]},
    )
    assert foreign.status_code == 404
    chosen = web.http.post(
        f"/sequences/{sequence_id}/mailboxes",
        data={"csrf_token": token, "mailbox": ["ann@acme-sales.com", "bob@acme-sales.com"]},
    )
    assert chosen.status_code == 303
    page = _text(web.http.get(f"/sequences/{sequence_id}/mailboxes").text)
    assert (
        "New enrollments send from ann@acme-sales.com, bob@acme-sales.com; started ones keep "
        "their mailbox." in page
    )
    assert "from ann@acme-sales.com, bob@acme-sales.com" in page

    with engine.begin() as db:
        enrolling.enroll(
            db,
            workspace_id=world.ws,
            sequence_id=sequence_id,
            people=later,
            actor="t",
            now=world.now,
        )
    senders = _senders(engine, sequence_id)
    assert senders.pop("early@client.com") == "sam@acme-sales.com"  # started: keeps its own
    assert sorted(senders.values()) == ["ann@acme-sales.com"] * 2 + ["bob@acme-sales.com"] * 2

    web.http.post("/logout", data={"csrf_token": token})
    member_token = _sign_in(web, slug, member)
    as_member = web.http.get(f"/sequences/{sequence_id}/mailboxes")
    assert as_member.status_code == 200
    assert "Save the mailboxes" not in as_member.text
    forbidden = web.http.post(
        f"/sequences/{sequence_id}/mailboxes",
        data={"csrf_token": member_token, "mailbox": ["ann@acme-sales.com"]},
    )
    assert forbidden.status_code == 403
