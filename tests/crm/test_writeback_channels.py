"""Every opt-out channel writes back to the CRM (R31, R3, R4, R36), end to end.

Each channel is driven through its real entry point (the person's page, the JSON API,
the CLI, a CSV import, the review queue, an inbound reply, the unsubscribe page, the
RFC 8058 one-click POST, the List-Unsubscribe mailto, a spam complaint's feedback-loop
report), then the CRM sync runs against the HubSpot or Salesforce emulator. With the
opt-out field mapped `read`, the CRM record stays untouched and the write-back is
`skipped`; mapped `read_write`, the record's opt-out field is set and the write-back is
`done`; the history API names each state as the sync left it (R35).

The emulators and optout's own web app are served once per module; every test has a
workspace of its own (deleted afterwards) and empties the emulated CRM first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from optout.cli import app as cli_app
from optout.clock import utcnow
from optout.config import Settings
from optout.crm import connections
from optout.crm.writeback import MAX_ATTEMPTS
from optout.db import tables as t
from optout.mail.tokens import UnsubscribeTokens
from optout.sending.claim import claim
from optout.sending.outcome import Sent, record_sent
from optout.services.access import accounts
from optout.services.access.accounts import Principal, Role
from optout.services.enrollments import enrolling
from optout.services.suppression import optouts
from optout.web.app import create_app
from tests.crm.conftest import ENV, HUBSPOT_TOKEN, Crm
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.salesforce import Salesforce
from tests.factories import World
from tests.inbound.helpers import corpus, message_id_of, readdress, reply
from tests.web.conftest import csrf_token_in, forget_sign_in_attempts, serving

KEYS = ("writeback-channels-key-0123456789",)
PASSWORD = "correct horse battery staple"
READ_FIRST = "ann@acme.com"  # opted out while the field is mapped `read`
WRITE_NEXT = "bob@acme.com"  # opted out once it is mapped `read_write`


@dataclass
class Servers:
    """The emulated CRMs and optout's web app, shared by the module."""

    clock: FakeClock
    hubspot: HubSpot
    salesforce: Salesforce
    web: str
    member: str  # a user each test's workspace makes a member


@pytest.fixture(scope="module")
def servers(engine: Engine) -> Iterator[Servers]:
    member = f"ops-{uuid.uuid4().hex[:12]}@example.com"
    with engine.begin() as db:
        accounts.create_user(db, email=member, name="Ops", password=PASSWORD, now=utcnow())
    clock = FakeClock()
    hubspot = HubSpot(token=HUBSPOT_TOKEN, clock=clock)
    salesforce = Salesforce(clock=clock)
    app = create_app(Settings(database_url="unused://", secret_keys=KEYS), engine)
    with ExitStack() as stack:
        hubspot.url = stack.enter_context(serving(hubspot.app))
        salesforce.base_url = salesforce.url = stack.enter_context(serving(salesforce.app))
        web = stack.enter_context(serving(app))
        yield Servers(clock, hubspot, salesforce, web, member)
    forget_sign_in_attempts(engine)
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == member))


@dataclass
class Here:
    """One workspace connected to one emulated CRM, with a member signed in to the web
    app, an API key, and a sequence whose first email went to everyone."""

    crm: Crm
    kind: str
    slug: str
    servers: Servers
    web: httpx.Client
    api: httpx.Client
    tokens: UnsubscribeTokens
    record_ids: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    message_ids: dict[str, str] = field(default_factory=dict)
    signed_in: bool = False

    @property
    def engine(self) -> Engine:
        return self.crm.engine

    def person_id(self, email: str) -> int:
        return self.crm.person_id(email)

    def token(self, email: str) -> str:
        return self.tokens.issue(
            workspace_id=self.crm.ws, person_id=self.person_id(email), email=email
        )

    def csrf(self, path: str) -> str:
        """The form token of a page."""
        return csrf_token_in(self.page(path))

    def page(self, path: str) -> str:
        """A page as the member signed in to the web app sees it."""
        if not self.signed_in:
            answer = self.web.post(
                "/login",
                data={
                    "workspace": self.slug,
                    "email": self.servers.member,
                    "password": PASSWORD,
                    "csrf_token": csrf_token_in(self.web.get("/login").text),
                },
            )
            assert answer.status_code == 303, answer.text
            self.signed_in = True
        answer = self.web.get(path)
        assert answer.status_code == 200, answer.text
        return answer.text

    def inbound(self, raw: bytes) -> dict[str, Any]:
        answer = self.api.post("/inbound", content=raw, headers={"Content-Type": "message/rfc822"})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    # --- the CRM's side ------------------------------------------------------------------

    def opted_out_in_crm(self, email: str) -> list[bool]:
        """The opt-out field of every CRM record with the address."""
        found = []
        for obj, record_id in self.record_ids[email]:
            if self.kind == "hubspot":
                value = self.servers.hubspot.prop(obj, record_id, "hs_email_optout")
                found.append(value == "true")
            else:
                found.append(self.servers.salesforce.records[obj][record_id]["HasOptedOutOfEmail"])
        return found

    def map_read_write(self) -> None:
        if self.kind == "hubspot":
            self.crm.map("contacts", "hs_email_optout", "email_opt_out", "read_write")
        else:
            self.crm.map("Lead", "HasOptedOutOfEmail", "email_opt_out", "read_write")
            self.crm.map("Contact", "HasOptedOutOfEmail", "email_opt_out", "read_write")

    def writeback(self, email: str) -> tuple[str, str]:
        w = t.crm_writebacks
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(w.c.status, w.c.last_error)
                .where(w.c.workspace_id == self.crm.ws, w.c.email == email)
                .order_by(w.c.id.desc())
                .limit(1)
            ).one()
        return row.status, row.last_error

    def channel(self, email: str) -> str:
        with self.engine.connect() as db:
            ledger = optouts.ledger(db, workspace_id=self.crm.ws, email=email)
        return str(ledger[0]["channel"])


def _crm_records(servers: Servers, kind: str) -> dict[str, list[tuple[str, str]]]:
    """An emptied CRM holding the two people (and, in Salesforce, Bob also as a Lead)."""
    if kind == "hubspot":
        hub = servers.hubspot
        hub.clear()
        return {
            email: [("contacts", hub.contact(email, firstname=email[:3].title()))]
            for email in (READ_FIRST, WRITE_NEXT)
        }
    sf = servers.salesforce
    sf.records.clear()
    found = {
        email: [("Contact", sf.create("Contact", Email=email, HasOptedOutOfEmail=False))]
        for email in (READ_FIRST, WRITE_NEXT)
    }
    lead = sf.create(
        "Lead", Email=WRITE_NEXT.upper(), Company="Acme", HasOptedOutOfEmail=False,
        IsConverted=False,
    )  # fmt: skip
    found[WRITE_NEXT].append(("Lead", lead))
    return found


@pytest.fixture(params=["hubspot", "salesforce"])
def here(request: pytest.FixtureRequest, servers: Servers, engine: Engine) -> Iterator[Here]:
    kind = request.param
    records = _crm_records(servers, kind)
    slug = f"wb-{uuid.uuid4().hex[:12]}"
    now = utcnow()
    if kind == "hubspot":
        base_url = servers.hubspot.url
        secrets = {"token": "OPTOUT_TEST_HUBSPOT_TOKEN"}
        settings: dict[str, Any] = {"requests_per_10s": None, "search_per_second": None}
    else:
        base_url = servers.salesforce.base_url
        secrets = {"client_secret": "OPTOUT_TEST_SF_SECRET"}
        settings = {"auth": "client_credentials", "client_id": servers.salesforce.client_id}
    with engine.begin() as db:
        world = World(db, now, slug=slug)
        sequence_id = world.sequence("Outbound")
        connection = connections.connect(
            db, workspace_id=world.ws, kind=kind, base_url=base_url, secrets=secrets,
            settings=settings, now=now,
        )  # fmt: skip
        accounts.set_member(db, workspace_id=world.ws, email=servers.member, role="member")
        boss = Principal(workspace_id=world.ws, role=Role.ADMIN, actor="test-setup")
        key = accounts.create_api_key(db, principal=boss, name="k", role=Role.ADMIN, now=now)
    crm = Crm(engine, world.ws, connection.id, sequence_id, servers.clock, dict(ENV))
    first = crm.sync()
    assert first.status == "ok", first.error
    with (
        httpx.Client(base_url=servers.web, follow_redirects=False, timeout=30) as web,
        httpx.Client(
            base_url=f"{servers.web}/api/v1",
            headers={"Authorization": f"Bearer {key.key}"},
            timeout=30,
        ) as api,
    ):
        here = Here(crm, kind, slug, servers, web, api, UnsubscribeTokens(KEYS), records)
        _send_first_email(here)
        yield here
    with engine.begin() as db:
        db.execute(t.workspaces.delete().where(t.workspaces.c.slug == slug))


def _send_first_email(here: Here) -> None:
    """Enroll both people and record the first email as sent, so replies find it."""
    now = utcnow() - timedelta(minutes=5)
    ids = [here.person_id(e) for e in (READ_FIRST, WRITE_NEXT)]
    with here.engine.begin() as db:
        enrolling.enroll(
            db, workspace_id=here.crm.ws, sequence_id=here.crm.sequence_id, people=ids,
            actor="test@optout", now=now,
        )  # fmt: skip
        claimed = claim(db, now=now, workspace_id=here.crm.ws).claims
        record_sent(
            db, sent=[Sent(c.email_id, message_id_of(c.email_id)) for c in claimed], now=now
        )
    by_person = {c.person["id"]: message_id_of(c.email_id) for c in claimed}
    here.message_ids = {e: by_person[i] for e, i in zip((READ_FIRST, WRITE_NEXT), ids, strict=True)}


# --- the channels, each through its real entry point -------------------------------------


def person_page(here: Here, email: str) -> None:
    person_id = here.person_id(email)
    answer = here.web.post(
        f"/people/{person_id}/opt-out",
        data={"reason": "asked us by phone", "csrf_token": here.csrf(f"/people/{person_id}")},
    )
    assert answer.status_code == 303, answer.text


def api(here: Here, email: str) -> None:
    answer = here.api.post("/optouts", json={"email": email, "reason": "asked by phone"})
    assert answer.status_code == 200, answer.text


def cli(here: Here, email: str) -> None:
    url = here.engine.url.render_as_string(hide_password=False)
    env = {"OPTOUT_DATABASE_URL": url, "OPTOUT_WORKSPACE": here.slug, "OPTOUT_ACTOR": "ops@cli"}
    result = CliRunner().invoke(cli_app, ["opt-out", email, "--reason", "asked by phone"], env=env)
    assert result.exit_code == 0, result.output


def csv_import(here: Here, email: str) -> None:
    answer = here.api.post(
        "/imports/people",
        params=[("map", "Email=email"), ("map", "Unsubscribed=email_opt_out")],
        content=f"Email,Unsubscribed\n{email},true\n".encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text


def review_queue(here: Here, email: str) -> None:
    with here.engine.begin() as db:
        db.execute(
            t.workspaces.update()
            .where(t.workspaces.c.id == here.crm.ws)
            .values(auto_opt_out_on_unsubscribe_reply=False)
        )
    asked = here.inbound(
        reply(
            sender=email,
            body="Please remove me from your list.",
            in_reply_to=here.message_ids[email],
        )
    )
    assert asked["outcome"] == "review_needed", asked
    assert _suppressed_here(here, email) is None
    answer = here.web.post(
        f"/review/{asked['id']}/opt-out", data={"csrf_token": here.csrf("/review")}
    )
    assert answer.status_code == 303, answer.text


def inbound_reply(here: Here, email: str) -> None:
    asked = here.inbound(
        reply(
            sender=email,
            body="Please remove me from your list.",
            in_reply_to=here.message_ids[email],
        )
    )
    assert (asked["kind"], asked["outcome"]) == ("unsubscribe", "opted_out"), asked


def unsubscribe_page(here: Here, email: str) -> None:
    link = f"/u/{here.token(email)}"
    assert here.web.get(link).status_code == 200  # the confirm page changes nothing
    answer = httpx.post(f"{here.servers.web}{link}", data={"confirm": "1"}, timeout=30)
    assert answer.status_code == 200, answer.text


def one_click(here: Here, email: str) -> None:
    answer = httpx.post(
        f"{here.servers.web}/u/{here.token(email)}",
        data={"List-Unsubscribe": "One-Click"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def mailto(here: Here, email: str) -> None:
    raw = readdress(
        corpus("unsubscribe_mailto_gmail.eml"),
        Subject=f"unsubscribe {here.token(email)}",
        Message_ID=f"<{uuid.uuid4().hex}@mail.gmail.com>",
    )
    asked = here.inbound(raw)
    assert (asked["outcome"], asked["match_by"]) == ("opted_out", "unsubscribe_token"), asked


def complaint(here: Here, email: str) -> None:
    """A feedback-loop report (ARF) about the email the person was sent."""
    boundary = uuid.uuid4().hex
    raw = (
        "From: <feedback@fbl.mailbox.example>\r\n"
        "To: <fbl@acme-sales.com>\r\n"
        "Subject: Complaint about message from 192.0.2.1\r\n"
        "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@fbl.mailbox.example>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "This is an email abuse report.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\n"
        "User-Agent: FBL/1.0\r\n"
        "Version: 1\r\n"
        f"Original-Rcpt-To: {email}\r\n"
        "Reported-Domain: acme-sales.com\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/rfc822\r\n\r\n"
        "From: Sam Seller <sam@acme-sales.com>\r\n"
        f"To: {email}\r\n"
        "Subject: Hello\r\n"
        f"Message-ID: {here.message_ids[email]}\r\n"
        "\r\n"
        "Hi there\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    asked = here.inbound(raw)
    assert (asked["kind"], asked["outcome"]) == ("complaint", "complained"), asked


Channel = Callable[[Here, str], None]


def _suppressed_here(here: Here, email: str) -> str | None:
    """How the address is suppressed here: opt_out, complaint, ...; None when it is not."""
    s = t.suppressions
    with here.engine.connect() as db:
        found = db.scalar(
            sa.select(s.c.kind).where(s.c.workspace_id == here.crm.ws, s.c.email == email)
        )
    return None if found is None else str(found)


def _writes_back_only_in_read_write_mode(
    here: Here, act: Channel, channel: str, kind: str = "opt_out"
) -> None:
    act(here, READ_FIRST)
    assert _suppressed_here(here, READ_FIRST) == kind
    assert here.channel(READ_FIRST) == channel
    assert here.writeback(READ_FIRST)[0] == "pending"  # queued with the opt-out
    read_only = here.crm.sync()
    assert read_only.status == "ok", read_only.error
    assert here.opted_out_in_crm(READ_FIRST) == [False]  # read mode: untouched
    assert here.writeback(READ_FIRST) == ("skipped", "no read_write mapping for this field")

    here.map_read_write()
    act(here, WRITE_NEXT)
    assert here.channel(WRITE_NEXT) == channel
    written = here.crm.sync()

    assert written.status == "ok", written.error
    assert here.writeback(WRITE_NEXT) == ("done", "")
    assert all(here.opted_out_in_crm(WRITE_NEXT))
    assert len(here.opted_out_in_crm(WRITE_NEXT)) == len(here.record_ids[WRITE_NEXT])
    assert here.opted_out_in_crm(READ_FIRST) == [False]  # skipped stays skipped
    if here.kind == "hubspot":
        assert here.servers.hubspot.unsubscribed == {WRITE_NEXT}
    # What a user reads of it: the history API names each write-back's state.
    states = {
        email: [
            w["state"]
            for w in here.api.get("/history", params={"email": email}).json()["crm_writebacks"]
        ]
        for email in (READ_FIRST, WRITE_NEXT)
    }
    assert states == {READ_FIRST: ["skipped"], WRITE_NEXT: ["written"]}


def test_R31_person_page_writes_back_to_the_crm_only_in_read_write_mode(here: Here) -> None:
    _writes_back_only_in_read_write_mode(here, person_page, "manual")


def test_R31_api_writes_back_to_the_crm_only_in_read_write_mode(here: Here) -> None:
    _writes_back_only_in_read_write_mode(here, api, "api")


def test_R31_cli_writes_back_to_the_crm_only_in_read_write_mode(here: Here) -> None:
    _writes_back_only_in_read_write_mode(here, cli, "manual")


def test_R31_csv_import_writes_back_to_the_crm_only_in_read_write_mode(here: Here) -> None:
    _writes_back_only_in_read_write_mode(here, csv_import, "import")


def test_R31_review_queue_writes_back_to_the_crm_only_in_read_write_mode(here: Here) -> None:
    _writes_back_only_in_read_write_mode(here, review_queue, "reply")


def test_R31_unsubscribe_reply_writes_back_to_the_crm_only_in_read_write_mode(
    here: Here,
) -> None:
    _writes_back_only_in_read_write_mode(here, inbound_reply, "reply")


def test_R31_unsubscribe_page_writes_back_to_the_crm_only_in_read_write_mode(
    here: Here,
) -> None:
    _writes_back_only_in_read_write_mode(here, unsubscribe_page, "unsubscribe_link")


def test_R31_one_click_writes_back_to_the_crm_only_in_read_write_mode(here: Here) -> None:
    _writes_back_only_in_read_write_mode(here, one_click, "unsubscribe_link")


def test_R31_mailto_writes_back_to_the_crm_only_in_read_write_mode(here: Here) -> None:
    _writes_back_only_in_read_write_mode(here, mailto, "unsubscribe_link")


def test_R31_spam_complaint_writes_back_to_the_crm_only_in_read_write_mode(here: Here) -> None:
    _writes_back_only_in_read_write_mode(here, complaint, "complaint", kind="complaint")
    # The report, as it came, is the evidence on the person's history.
    [report] = here.api.get("/history", params={"email": WRITE_NEXT}).json()["received"]
    assert (report["kind"], report["outcome"], report["found_by"]) == (
        "complaint",
        "complained",
        "feedback-loop report (ARF)",
    )
    assert (report["feedback_type"], report["reporting_domain"]) == ("abuse", "fbl.mailbox.example")
    page = here.page(f"/people/{here.person_id(WRITE_NEXT)}")
    assert "<b>Spam complaint</b>" in page
    assert "abuse report from fbl.mailbox.example" in page


@pytest.mark.parametrize("here", ["salesforce"], indirect=True)
def test_R35_a_write_back_the_crm_keeps_refusing_reads_failed_with_the_crms_answer(
    here: Here,
) -> None:
    here.map_read_write()
    api(here, WRITE_NEXT)
    for _, record_id in here.record_ids[WRITE_NEXT]:
        here.servers.salesforce.fail_records[record_id] = 99
    w = t.crm_writebacks
    person = f"/people/{here.person_id(WRITE_NEXT)}"

    def tries() -> tuple[dict[str, Any], str]:
        assert here.crm.sync().status == "ok"
        with here.engine.begin() as db:  # the retry is due: its backoff has passed
            db.execute(
                w.update()
                .where(w.c.workspace_id == here.crm.ws)
                .values(updated_at=utcnow() - timedelta(days=1))
            )
        found = here.api.get("/history", params={"email": WRITE_NEXT}).json()
        [row] = found["crm_writebacks"]
        return row, here.page(person)

    row, page = tries()
    assert (row["state"], row["attempts"]) == ("queued", 1)
    assert "UNABLE_TO_LOCK_ROW" in row["crm_answer"]
    assert "Waiting for the next CRM sync (the last of 1 try failed)" in page
    for _ in range(MAX_ATTEMPTS - 1):
        row, page = tries()

    assert (row["state"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert row["crm_answer"].startswith("salesforce ")
    assert "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access" in row["crm_answer"]
    assert f"Failed after {MAX_ATTEMPTS} tries; no more retries" in page
    assert row["crm_answer"] in page
    assert here.opted_out_in_crm(WRITE_NEXT) == [False, False]
