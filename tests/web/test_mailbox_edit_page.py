"""Editing and removing a mailbox on its pages: every setting can be changed, a refused
value is told beside its input with the form kept as typed, passwords are never shown
back, and removing a mailbox that enrollments in progress send from asks where they go
and moves them all (R37)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.crypto import new_key
from optout.db import tables as t
from optout.services.access import accounts
from optout.services.mailboxes import sender_mailboxes
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in, web_client
from tests.web.test_complaint_rates import PASSWORD

KEYS = (new_key(),)


@pytest.fixture
def site(engine: Engine) -> Iterator[Web]:
    with web_client(engine, encryption_keys=KEYS) as client:
        yield client


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _value(page: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
    assert found is not None, name
    return html.unescape(found[1])


def _sign_in(site: Web, world: World) -> str:
    user = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    accounts.create_user(world.db, email=user, name="Ad", password=PASSWORD, now=world.now)
    accounts.set_member(world.db, workspace_id=world.ws, email=user, role="admin")
    return user


def _login(site: Web, slug: str, user: str) -> None:
    token = csrf_token_in(site.http.get("/login").text)
    site.http.post(
        "/login", data={"workspace": slug, "email": user, "password": PASSWORD, "csrf_token": token}
    )


def _mailbox(world: World, address: str, **values: object) -> int:
    return sender_mailboxes.create(
        world.db,
        workspace_id=world.ws,
        address=address,
        actor="admin@acme",
        now=world.now,
        **values,  # type: ignore[arg-type]
    ).id


def _form(page: str) -> dict[str, str]:
    names = (
        "address",
        "display_name",
        "daily_limit",
        "gap",
        "time_zone",
        "owner",
        "smtp_url",
        "imap_host",
        "imap_port",
        "imap_user",
        "imap_folder",
    )
    form = {name: _value(page, name) for name in names}
    form["signature"] = html.unescape(
        re.search(r'name="signature"[^>]*>([^<]*)</textarea>', page)[1]  # type: ignore[index]
    )
    if re.search(r'name="imap_ssl" value="on" checked', page):
        form["imap_ssl"] = "on"  # a ticked box is posted, as a browser does
    form["csrf_token"] = csrf_token_in(page)
    return form


def test_R37_an_admin_edits_every_setting_of_a_mailbox_and_a_bad_value_is_told_beside_it(
    site: Web, committed: Callable[[], AbstractContextManager[World]]
) -> None:
    with committed() as world:
        user = _sign_in(site, world)
        box = _mailbox(world, "ann@acme-sales.com", daily_limit=40)
        _mailbox(world, "ben@acme-sales.com")
        slug = world.workspace.slug
    _login(site, slug, user)
    page = site.http.get(f"/mailboxes/{box}/edit")
    assert page.status_code == 200
    form = _form(page.text)
    assert (form["address"], form["daily_limit"], form["time_zone"]) == (
        "ann@acme-sales.com",
        "40",
        "UTC",
    )
    typed = {
        **form,
        "display_name": "Ann Lee",
        "daily_limit": "25",
        "gap": "120",
        "time_zone": "Mars/Olympus",
        "owner": user,
    }
    refused = site.http.post(f"/mailboxes/{box}/edit", data=typed)
    assert refused.status_code == 422
    beside = re.search(r'<p class="field-error" id="time_zone-error">([^<]*)</p>', refused.text)
    assert beside is not None
    assert "'Mars/Olympus' is not a time zone name" in html.unescape(beside[1])
    assert _value(refused.text, "display_name") == "Ann Lee"
    assert _value(refused.text, "daily_limit") == "25"
    assert _value(refused.text, "time_zone") == "Mars/Olympus"

    taken = site.http.post(
        f"/mailboxes/{box}/edit",
        data={**typed, "time_zone": "Europe/Berlin", "address": "BEN@acme-sales.com"},
    )
    assert taken.status_code == 409
    assert "the mailbox ben@acme-sales.com exists already" in _text(taken.text)
    assert 'id="address-error"' in taken.text

    saved = site.http.post(
        f"/mailboxes/{box}/edit",
        data={
            **typed,
            "time_zone": "Europe/Berlin",
            "address": "Ann.Lee@acme-sales.com",
            "signature": "Ann Lee\nAcme Sales",
            "imap_host": "imap.acme-sales.com",
            "imap_password": "imap-secret-1",
            "imap_ssl": "on",
        },
    )
    assert saved.status_code == 303
    listing = site.http.get("/mailboxes").text
    assert "Saved ann.lee@acme-sales.com." in _text(listing)
    row = _text(listing[listing.index('data-mailbox="ann.lee@acme-sales.com"') :].split("</tr>")[0])
    assert "0 of 25" in row
    assert "120 s" in row
    assert "Europe/Berlin" in row
    assert "replies read from its own inbox" in row
    again = site.http.get(f"/mailboxes/{box}/edit").text
    assert _value(again, "owner") == user
    assert _value(again, "imap_host") == "imap.acme-sales.com"
    assert _value(again, "imap_user") == "ann.lee@acme-sales.com"
    assert _value(again, "imap_port") == "993"
    assert "imap-secret-1" not in again
    assert "A password is saved" in again
    with site.engine.connect() as db:
        stored = db.scalar(sa.select(t.mailboxes.c.imap_password).where(t.mailboxes.c.id == box))
    assert stored is not None
    assert "imap-secret-1" not in stored

    # A save that leaves the password empty keeps the saved one; no limit is allowed.
    kept = site.http.post(f"/mailboxes/{box}/edit", data={**_form(again), "daily_limit": ""})
    assert kept.status_code == 303
    with site.engine.connect() as db:
        row_after = db.execute(
            sa.select(t.mailboxes.c.imap_password, t.mailboxes.c.daily_limit).where(
                t.mailboxes.c.id == box
            )
        ).one()
    assert row_after.imap_password == stored
    assert row_after.daily_limit is None
    ev = t.events
    with site.engine.connect() as db:
        edits = list(
            db.scalars(
                sa.select(ev.c.detail)
                .where(ev.c.kind == "mailbox_edited", ev.c.workspace_id == world.ws)
                .order_by(ev.c.id)
            )
        )
    assert edits[-1]["changed"] == ["daily_limit"]  # what the last save changed, no more
    assert "imap_password" in edits[0]["changed"]
    assert all("imap-secret-1" not in str(detail) for detail in edits)


def _enrolled_on(world: World, sequence: int, addresses: list[str], mailbox: int) -> list[int]:
    people = [world.person(a) for a in addresses]
    world.enroll(sequence, people)
    e = t.enrollments
    world.db.execute(e.update().where(e.c.sequence_id == sequence).values(mailbox_id=mailbox))
    return people


def _mailbox_of(engine: Engine) -> dict[str, str | None]:
    e, p, b = t.enrollments, t.people, t.mailboxes
    with engine.connect() as db:
        return {
            r.email: r.address
            for r in db.execute(
                sa.select(p.c.email, b.c.address)
                .join(e, e.c.person_id == p.c.id)
                .outerjoin(b, b.c.id == e.c.mailbox_id)
            )
        }


def test_R37_removing_a_mailbox_in_use_asks_where_its_enrollments_go_and_shares_them_out(
    site: Web, committed: Callable[[], AbstractContextManager[World]]
) -> None:
    with committed() as world:
        user = _sign_in(site, world)
        sequence = world.sequence()
        ann = _mailbox(world, "ann@acme-sales.com")
        ben = _mailbox(world, "ben@acme-sales.com")
        cy = _mailbox(world, "cy@acme-sales.com")
        idle = _mailbox(world, "idle@acme-sales.com")
        sender_mailboxes.attach(world.db, sequence_id=sequence, mailbox_ids=[ann, ben, cy])
        people = [f"p{i}@client.com" for i in range(6)]
        _enrolled_on(world, sequence, people, ann)
        slug = world.workspace.slug
    _login(site, slug, user)

    asked = site.http.get(f"/mailboxes/{ann}/remove")
    assert asked.status_code == 200
    text = _text(asked.text)
    assert "6 enrollment(s) in progress send from ann@acme-sales.com" in text
    assert "The other mailboxes of their sequence" in text
    assert "ben@acme-sales.com — already sends for Outbound" in text
    token = csrf_token_in(asked.text)
    unanswered = site.http.post(f"/mailboxes/{ann}/remove", data={"csrf_token": token})
    assert unanswered.status_code == 409
    assert "say which mailbox they move to" in _text(unanswered.text)
    assert set(_mailbox_of(site.engine).values()) == {"ann@acme-sales.com"}

    dealt = site.http.post(
        f"/mailboxes/{ann}/remove", data={"csrf_token": token, "move_to": "round-robin"}
    )
    assert dealt.status_code == 303
    assert "6 enrollment(s) were shared out" in _text(site.http.get("/mailboxes").text)
    given = _mailbox_of(site.engine)
    assert sorted(given) == people
    assert set(given.values()) == {"ben@acme-sales.com", "cy@acme-sales.com"}
    assert list(given.values()).count("ben@acme-sales.com") == 3

    confirm = site.http.get(f"/mailboxes/{idle}/remove")
    assert "No enrollment in progress sends from idle@acme-sales.com" in _text(confirm.text)
    removed = site.http.post(f"/mailboxes/{idle}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    listing = site.http.get("/mailboxes").text
    assert "Removed idle@acme-sales.com." in _text(listing)
    assert 'data-mailbox="idle@acme-sales.com"' not in listing
    assert 'data-mailbox="ann@acme-sales.com"' not in listing

    moved = site.http.post(
        f"/mailboxes/{ben}/remove", data={"csrf_token": token, "move_to": "cy@acme-sales.com"}
    )
    assert moved.status_code == 303
    assert set(_mailbox_of(site.engine).values()) == {"cy@acme-sales.com"}
