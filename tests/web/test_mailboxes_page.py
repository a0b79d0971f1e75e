"""The mailboxes page: an admin sees each mailbox's sends today against its limit, adds
one, pauses it with a reason and resumes it; a bad time zone is refused in words (R37,
R40)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

from optout.services.access import accounts
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in
from tests.web.test_complaint_rates import PASSWORD


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_R37_an_admin_adds_pauses_and_resumes_a_mailbox_on_its_page(
    web: Web, committed: Callable[[], AbstractContextManager[World]]
) -> None:
    user = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        accounts.create_user(world.db, email=user, name="Ad", password=PASSWORD, now=world.now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="admin")
        slug = world.workspace.slug
    token = csrf_token_in(web.http.get("/login").text)
    web.http.post(
        "/login", data={"workspace": slug, "email": user, "password": PASSWORD, "csrf_token": token}
    )
    listing = web.http.get("/mailboxes")
    assert listing.status_code == 200
    assert "No mailboxes yet." in listing.text
    token = csrf_token_in(listing.text)
    form = {
        "csrf_token": token,
        "address": "ann@acme-sales.com",
        "display_name": "Ann Lee",
        "daily_limit": "40",
        "gap": "120",
        "time_zone": "Mars/Olympus",
    }
    refused = web.http.post("/mailboxes/new", data=form)
    assert refused.status_code == 422
    assert "'Mars/Olympus' is not a time zone name" in _text(refused.text)
    added = web.http.post("/mailboxes/new", data={**form, "time_zone": "Europe/Berlin"})
    assert added.status_code == 303
    page = web.http.get("/mailboxes").text
    assert "Added ann@acme-sales.com." in _text(page)
    row = _text(page[page.index('data-mailbox="ann@acme-sales.com"') :].split("</tr>")[0])
    assert "0 of 40" in row
    assert "120 s" in row
    assert "Europe/Berlin" in row
    mailbox_id = re.search(r'action="/mailboxes/(\d+)/pause"', page)
    assert mailbox_id is not None
    paused = web.http.post(
        f"/mailboxes/{mailbox_id[1]}/pause", data={"csrf_token": token, "reason": "new domain"}
    )
    assert paused.status_code == 303
    page = web.http.get("/mailboxes").text
    assert "paused new domain" in _text(page)
    resumed = web.http.post(f"/mailboxes/{mailbox_id[1]}/resume", data={"csrf_token": token})
    assert resumed.status_code == 303
    assert "Resumed ann@acme-sales.com." in _text(web.http.get("/mailboxes").text)
