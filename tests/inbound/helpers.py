"""Shared pieces of the inbound tests: a sent sequence email per person (claimed and
recorded through the real sending code), replies built on the corpus, and the
options with the same token keys the sending side used."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.inbound import InboundOptions
from optout.mail.tokens import UnsubscribeTokens
from optout.sending.claim import claim
from optout.sending.outcome import Sent, record_sent
from optout.services.sequences import definitions
from tests.factories import World

CORPUS = Path(__file__).parent / "corpus"
MANIFEST: dict[str, dict[str, str]] = json.loads((CORPUS / "manifest.json").read_text())
KEYS = ("inbound-test-secret-key-0123456789",)
TOKENS = UnsubscribeTokens(KEYS)
OPTIONS = InboundOptions(tokens=TOKENS)
SENDER = "Sam Seller <sam@acme-sales.com>"
TWO_EMAILS = (
    definitions.Step(kind="email", subject="Quick question", body_text="Hi, how is it going?"),
    definitions.Step(kind="wait", wait_seconds=2 * 86400),
    definitions.Step(kind="email", subject="Following up", body_text="Just checking in."),
)


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def message_id_of(email_id: int) -> str:
    """The Message-ID the worker gives an email (optout.sending.worker.Mailer.message)."""
    return f"<{uuid.uuid5(uuid.NAMESPACE_URL, f'optout:{email_id}')}@acme-sales.com>"


def send_due(db: Connection, now: datetime) -> dict[int, str]:
    """Claim and record as sent every email due at `now`: person id -> Message-ID."""
    claimed = claim(db, now=now, limit=10_000).claims
    record_sent(db, sent=[Sent(c.email_id, message_id_of(c.email_id)) for c in claimed], now=now)
    return {c.person["id"]: message_id_of(c.email_id) for c in claimed}


@dataclass
class Sent1:
    """A workspace where step 1 of a two-email sequence went to everyone."""

    world: World
    seq: int
    ids: dict[str, int]
    message_ids: dict[str, str]

    @property
    def ws(self) -> int:
        return self.world.ws

    def status(self, name: str, sequence_id: int | None = None) -> str | None:
        return self.world.status_of(sequence_id or self.seq, self.ids[name])

    def token(self, name: str) -> str:
        email = self.world.db.scalar(
            sa.select(t.people.c.email).where(t.people.c.id == self.ids[name])
        )
        return TOKENS.issue(workspace_id=self.ws, person_id=self.ids[name], email=str(email))


def sent_world(world: World, people: Sequence[str] = ("ann@acme.com", "ben@acme.com")) -> Sent1:
    ids = {}
    for address in people:
        name = address.split("@")[0]
        ids[name] = world.person(address, company=address.split("@")[1], first_name=name.title())
    seq = world.sequence("Outbound", steps=TWO_EMAILS)
    world.enroll(seq, list(ids.values()))
    sent = send_due(world.db, world.now)
    by_name = {name: sent[person_id] for name, person_id in ids.items()}
    return Sent1(world, seq, ids, by_name)


def reply(
    *,
    sender: str,
    body: str,
    in_reply_to: str | None = None,
    subject: str = "Re: Quick question",
    to: str = SENDER,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """A plain-text reply as a mail client writes it."""
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(now or datetime(2026, 11, 2, 10, 0), usegmt=False)}",
        f"Message-ID: {message_id or f'<{uuid.uuid4().hex}@client.example>'}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


def readdress(raw: bytes, **headers: str) -> bytes:
    """A corpus message with some headers replaced (or added), e.g. In_Reply_To=<...>."""
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    text = head.decode("utf-8", "surrogateescape")
    for key, value in headers.items():
        name = key.replace("_", "-")
        pattern = re.compile(rf"^{re.escape(name)}:.*(?:\n[ \t].*)*$", re.I | re.M)
        line = f"{name}: {value}"
        text, count = pattern.subn(lambda _m, line=line: line, text, count=1)
        if not count:
            text = f"{line}\n{text}"
    return text.encode("utf-8", "surrogateescape") + sep + body


def row_of(db: Connection, inbound_id: int) -> Any:
    m = t.inbound_messages
    return db.execute(sa.select(m).where(m.c.id == inbound_id)).mappings().one()
