"""A person's history shows each signal as it came (R29, R35): a bounce with its status
code, the receiving server's words and which reader found it, a reply with its words, and
the opt-out's trip to the CRM; on the person's page and in the history API alike, and
explain says where the opt-out stands in the CRM."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from optout.cli import app as cli_app
from optout.db import tables as t
from optout.sending.claim import claim
from optout.sending.outcome import Sent, record_sent
from optout.services.access import accounts
from optout.services.access.accounts import Principal, Role
from optout.services.suppression import optouts, writebacks
from tests.factories import World
from tests.inbound.helpers import corpus, message_id_of, readdress, reply
from tests.user_text import internal_words
from tests.web.conftest import Web

Committed = Callable[[], AbstractContextManager[World]]
PASSWORD = "correct horse battery staple"


@dataclass
class Desk:
    """A workspace where Dee and Ann got the first email, seen by a signed-in member and
    through an API key."""

    world: World
    web: Web
    api: httpx.Client
    ids: dict[str, int]
    message_ids: dict[str, str]
    sequence_id: int

    def page(self, email: str) -> str:
        answer = self.web.http.get(f"/people/{self.ids[email]}")
        assert answer.status_code == 200, answer.text
        return answer.text

    def history(self, email: str) -> dict[str, Any]:
        answer = self.api.get(f"/people/{self.ids[email]}/history")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def inbound(self, raw: bytes) -> dict[str, Any]:
        answer = self.api.post("/inbound", content=raw, headers={"Content-Type": "message/rfc822"})
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found


def _text(page: str, section: str) -> str:
    """The words a reader sees in the element with id `section`, tags dropped."""
    start = page.index(f'id="{section}"')
    end = page.find("</section>", start)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page[start:end])).split())


@pytest.fixture
def desk(engine: Engine, committed: Committed, web: Web, now: datetime) -> Iterator[Desk]:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        ids = {
            e: world.person(e, company=e.split("@")[1]) for e in ("dee@globex.io", "ann@acme.com")
        }
        sequence_id = world.sequence("Outbound")
        world.enroll(sequence_id, list(ids.values()))
        claimed = claim(world.db, now=now, workspace_id=world.ws).claims
        record_sent(
            world.db, sent=[Sent(c.email_id, message_id_of(c.email_id)) for c in claimed], now=now
        )
        sent = {c.person["id"]: message_id_of(c.email_id) for c in claimed}
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
        boss = Principal(workspace_id=world.ws, role=Role.ADMIN, actor="test-setup")
        key = accounts.create_api_key(world.db, principal=boss, name="k", role=Role.ADMIN, now=now)
    login = web.http.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token is not None
    signed_in = web.http.post(
        "/login",
        data={
            "workspace": world.workspace.slug,
            "email": user,
            "password": PASSWORD,
            "csrf_token": token.group(1),
        },
    )
    assert signed_in.status_code == 303, signed_in.text
    with httpx.Client(
        base_url=str(web.http.base_url.join("/api/v1")),
        headers={"Authorization": f"Bearer {key.key}"},
        timeout=30,
    ) as api:
        yield Desk(world, web, api, ids, {e: sent[i] for e, i in ids.items()}, sequence_id)
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == user))


@pytest.mark.parametrize(
    ("sample", "reader", "found_by", "words"),
    [
        (
            "bounce_postfix_dsn.eml",
            "rfc3464",
            "standard delivery report",
            "Recipient address rejected: User unknown in virtual mailbox table",
        ),
        (
            "bounce_qmail.eml",
            "flufl.bounce",
            "mail server notice, read by flufl.bounce",
            "does not like recipient",
        ),
        (
            "bounce_postfix_text_only.eml",
            "text",
            "mail server notice, read from its text (postfix)",
            "User unknown",
        ),
    ],
)
def test_R35_a_bounce_shows_its_status_code_the_servers_words_and_its_reader(
    desk: Desk, sample: str, reader: str, found_by: str, words: str
) -> None:
    raw = readdress(corpus(sample), In_Reply_To=desk.message_ids["dee@globex.io"])
    assert desk.inbound(raw)["outcome"] == "bounced"

    [bounce] = desk.history("dee@globex.io")["received"]
    assert (bounce["kind"], bounce["outcome"]) == ("bounce", "bounced")
    assert (bounce["reader"], bounce["found_by"]) == (reader, found_by)
    [line] = bounce["recipients"]
    assert (line["address"], line["status"], line["severity"]) == (
        "dee@globex.io",
        "5.1.1",
        "permanent",
    )
    assert words in line["diagnostic"]
    assert line["why"].startswith("the address does not exist")
    seen = _text(desk.page("dee@globex.io"), "history")
    assert "Messages received about dee@globex.io" in seen
    assert f"Hard bounce from {bounce['from_address']} {found_by} 5.1.1" in seen
    assert words in seen
    assert "the address does not exist (status 5.1.1)" in seen
    assert "Address marked bounced: never emailed again" in seen
    # The ledger line keeps the server's words as its evidence too.
    assert re.search(r"added bounce inbound .*hard bounce: 5\.1\.1", seen, re.I), seen
    assert internal_words(seen) == []


def test_R35_an_unsubscribe_reply_shows_its_words_and_the_crm_write_back_queued(
    desk: Desk,
) -> None:
    raw = reply(
        sender="ann@acme.com",
        body="Please remove me from your list.",
        in_reply_to=desk.message_ids["ann@acme.com"],
    )
    assert desk.inbound(raw)["outcome"] == "opted_out"

    found = desk.history("ann@acme.com")
    [message] = found["received"]
    assert (message["kind"], message["outcome"]) == ("unsubscribe", "opted_out")
    assert message["words"] == "Please remove me from your list."
    assert message["recipients"] == []
    [crm] = found["crm_writebacks"]
    assert (crm["state"], crm["attempts"], crm["crm_answer"]) == ("queued", 0, "")
    page = desk.page("ann@acme.com")
    seen = _text(page, "history")
    assert "Reply asking to unsubscribe" in seen
    assert "Please remove me from your list." in seen
    assert "Opted out" in seen
    assert "Opt-out sent to the CRM" in seen
    assert "Waiting for the next CRM sync" in seen
    assert "CRM: Waiting for the next CRM sync" in _text(page, "opt-out")


@pytest.mark.parametrize(
    ("status", "attempts", "last_error", "state", "words"),
    [
        ("done", 1, "", "written", "Written to the CRM"),
        (
            "skipped",
            0,
            "no read_write mapping for this field",
            "skipped",
            "Not written: the CRM's opt-out field is mapped read only",
        ),
        (
            "pending",
            2,
            "salesforce Contact: UNABLE_TO_LOCK_ROW: unable to obtain exclusive access",
            "queued",
            "Waiting for the next CRM sync (the last of 2 tries failed)",
        ),
        (
            "failed",
            5,
            "hubspot contacts: 403 This app lacks the communication preferences scope",
            "failed",
            "Failed after 5 tries; no more retries",
        ),
    ],
)
def test_R35_each_crm_write_back_state_reads_as_words_with_the_crms_answer(
    desk: Desk, status: str, attempts: int, last_error: str, state: str, words: str
) -> None:
    w = t.crm_writebacks
    with desk.world.db.engine.begin() as db:  # the states the CRM sync leaves a write-back in
        optouts.opt_out(
            db, workspace_id=desk.world.ws, email="ann@acme.com", actor="ops@acme",
            channel="manual", reason="asked by phone", now=desk.world.now,
        )  # fmt: skip
        assert not writebacks.record_opt_out_writeback(  # one pending row per address
            db, workspace_id=desk.world.ws, email="ann@acme.com", now=desk.world.now
        )
        db.execute(
            w.update()
            .where(w.c.workspace_id == desk.world.ws)
            .values(status=status, attempts=attempts, last_error=last_error)
        )

    [crm] = desk.history("ann@acme.com")["crm_writebacks"]
    answer = last_error if state in ("queued", "failed") else ""
    assert (crm["state"], crm["attempts"], crm["crm_answer"]) == (state, attempts, answer)
    page = desk.page("ann@acme.com")
    seen = _text(page, "history")
    assert words in seen
    if answer:
        assert answer in seen
        assert answer in _text(page, "opt-out")
    assert "read_write" not in page  # the drain's own words stay out of the page
    assert internal_words(_text(page, "history")) == []


def test_R29_explain_says_where_the_opt_out_stands_in_the_crm(desk: Desk) -> None:
    answer = desk.api.post("/optouts", json={"email": "ann@acme.com", "reason": "by phone"})
    assert answer.status_code == 200, answer.text
    refused = "hubspot contacts: 403 This app lacks the communication preferences scope"
    w = t.crm_writebacks
    with desk.world.db.engine.begin() as db:  # as the CRM sync leaves a write-back it gave up
        db.execute(
            w.update()
            .where(w.c.workspace_id == desk.world.ws)
            .values(status="failed", attempts=5, last_error=refused)
        )

    panel = desk.web.http.get(
        f"/people/{desk.ids['ann@acme.com']}/explain", params={"sequence": "Outbound"}
    )
    assert panel.status_code == 200, panel.text
    seen = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", panel.text)).split())
    assert f"CRM: Failed after 5 tries; no more retries — the CRM answered: {refused}" in seen
    assert internal_words(seen) == []
    found = desk.api.get(
        "/explain", params={"sequence_id": desk.sequence_id, "email": "ann@acme.com"}
    ).json()
    assert found["allowed"] is False
    sent = found["crm_writeback"]
    assert (sent["state"], sent["attempts"], sent["crm_answer"]) == ("failed", 5, refused)
    assert sent["summary"] == "Failed after 5 tries; no more retries"
    url = desk.world.db.engine.url.render_as_string(hide_password=False)
    env = {"OPTOUT_DATABASE_URL": url, "OPTOUT_WORKSPACE": desk.world.workspace.slug}
    told = CliRunner().invoke(cli_app, ["explain", "ann@acme.com", "-s", "Outbound"], env=env)
    assert told.exit_code == 0, told.output
    assert "CRM: Failed after 5 tries; no more retries (the CRM answered:" in " ".join(
        told.output.split()
    )
    # Dee has no opt-out: nothing about the CRM.
    other = desk.web.http.get(
        f"/people/{desk.ids['dee@globex.io']}/explain", params={"sequence": "Outbound"}
    )
    assert "CRM:" not in other.text
