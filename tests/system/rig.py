"""The outside world of the delivery model: a real SMTP server that judges every message
it is about to accept, the web app serving the unsubscribe links, and a HubSpot portal.

The SMTP server (aiosmtpd on loopback) asks, for every message, before it answers the
DATA command: which email of ours is this, was its enrollment active, its sequence
active, and was its person eligible, decided from scratch (every exclusion evaluated,
the decision index not read) on the database as the claim left it; was the address
opted out or bounced earlier by any channel the model used; was this (enrollment, step)
delivered before. Each "no" is a violation, which the model's invariant reports.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import policy

import httpx
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.eligibility import Purpose, decide
from optout.mail.tokens import UnsubscribeTokens
from optout.sending.transports import SmtpTransport
from optout.sending.worker import Mailer
from optout.services.eligibility import facts, situation
from optout.web.app import create_app
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.inbound.helpers import message_id_of
from tests.sending.smtp_server import HOST, Recorder, smtp_server
from tests.web.conftest import serving

KEYS = ("delivery-model-secret-key-0123456789",)
HUBSPOT_TOKEN = "pat-na1-model-token"
CRM_ENV = {
    "OPTOUT_TEST_HUBSPOT_TOKEN": HUBSPOT_TOKEN,
    "OPTOUT_TEST_HUBSPOT_SECRET": "secret",
    "OPTOUT_CRM_ALLOWED_HOSTS": "127.0.0.1",  # the HubSpot emulator listens on loopback
}


@dataclass(frozen=True)
class Accepted:
    """A message the SMTP server accepted, and what its recipient can do with it."""

    email_id: int
    enrollment_id: int
    step_id: int
    recipient: str
    message_id: str
    unsubscribe_url: str  # the https link of List-Unsubscribe
    unsubscribe_mailto: str  # the mailto of List-Unsubscribe


@dataclass
class Gatekeeper(Recorder):
    """An SMTP server that accepts everything but records every message that breaks the
    promise; `refuse_once` addresses get one permanent refusal (a hard bounce)."""

    engine: Engine | None = None
    workspace_id: int = 0
    now: datetime = datetime.min
    suppressed: dict[str, str] = field(default_factory=dict)  # address -> how, per the model
    refuse_once: set[str] = field(default_factory=set)
    accepted: list[Accepted] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def start_run(self, *, workspace_id: int) -> None:
        self.workspace_id = workspace_id
        self.suppressed.clear()
        self.refuse_once.clear()
        self.accepted.clear()
        self.violations.clear()
        self.received.clear()

    def rcpt_reply(self, address: str) -> str:
        if address in self.refuse_once:
            self.refuse_once.discard(address)
            self.suppressed.setdefault(address, "a hard bounce at the SMTP server")
            return f"550 5.1.1 <{address}>: user unknown"
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            self._judge(envelope.original_content or b"", list(envelope.rcpt_tos))
        except Exception as exc:  # a broken judge must fail the model, not hang the worker
            self.violations.append(f"could not judge a message: {exc!r}")
        return await super().handle_DATA(server, session, envelope)

    def _judge(self, content: bytes, recipients: list[str]) -> None:
        assert self.engine is not None
        message = email.message_from_bytes(content, policy=policy.default)
        message_id = str(message["Message-ID"])
        links = [part.strip(" <>") for part in str(message["List-Unsubscribe"]).split(",")]
        o, e, s = t.outbound_emails, t.enrollments, t.sequences
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(o.c.id, o.c.enrollment_id, o.c.step_id, o.c.person_id).where(
                    o.c.workspace_id == self.workspace_id
                )
            ).all()
            found = [row for row in rows if message_id_of(row.id) == message_id]
            if len(found) != 1 or len(recipients) != 1:
                self.violations.append(f"a message no email of ours explains: {message_id}")
                return
            row, recipient = found[0], recipients[0]
            enrollment = db.execute(
                sa.select(e.c.status, e.c.sequence_id, s.c.status.label("sequence_status"))
                .join(s, s.c.id == e.c.sequence_id)
                .where(e.c.id == row.enrollment_id)
            ).one()
            where = situation(
                db,
                workspace_id=self.workspace_id,
                sequence_id=enrollment.sequence_id,
                purpose=Purpose.SEND,
                now=self.now,
            )
            person = facts(
                db,
                workspace_id=self.workspace_id,
                person_ids=[row.person_id],
                sequence_id=enrollment.sequence_id,
            )[row.person_id]
            decision = decide(person, where)
        what = f"email {row.id} (enrollment {row.enrollment_id}, step {row.step_id}) to {recipient}"
        if not decision.allowed:
            reasons = "; ".join(reason.summary for reason in decision.reasons)
            self.violations.append(f"{what} was sent to an ineligible person: {reasons}")
        if recipient in self.suppressed:
            self.violations.append(f"{what} was sent after {self.suppressed[recipient]}")
        if enrollment.status not in t.ACTIVE_STATUSES or enrollment.sequence_status != "active":
            self.violations.append(
                f"{what} was sent for a {enrollment.status} enrollment of a "
                f"{enrollment.sequence_status} sequence"
            )
        if any(
            (a.enrollment_id, a.step_id) == (row.enrollment_id, row.step_id) for a in self.accepted
        ):
            self.violations.append(f"{what}: this step of this enrollment was delivered twice")
        self.accepted.append(
            Accepted(
                email_id=row.id,
                enrollment_id=row.enrollment_id,
                step_id=row.step_id,
                recipient=recipient,
                message_id=message_id,
                unsubscribe_url=next(link for link in links if link.startswith("http")),
                unsubscribe_mailto=next(link for link in links if link.startswith("mailto:")),
            )
        )


@dataclass
class Rig:
    engine: Engine
    smtp: Gatekeeper
    mailer: Mailer
    web: httpx.Client
    hubspot: HubSpot
    crm_clock: FakeClock
    tokens: UnsubscribeTokens


@contextmanager
def rig(engine: Engine) -> Iterator[Rig]:
    """Every server the model talks to, on loopback, for one database."""
    gatekeeper = Gatekeeper(engine=engine)
    clock = FakeClock()
    hubspot = HubSpot(token=HUBSPOT_TOKEN, clock=clock)
    with ExitStack() as stack:
        port = stack.enter_context(smtp_server(gatekeeper))
        hubspot.url = stack.enter_context(serving(hubspot.app))
        app_settings = Settings(database_url="unused://", secret_keys=KEYS)
        base = stack.enter_context(serving(create_app(app_settings, engine)))
        web = stack.enter_context(httpx.Client(base_url=base, follow_redirects=False, timeout=10))
        transport = SmtpTransport(HOST, port, security="none", timeout=10, retries=0)
        stack.callback(transport.close)
        settings = Settings(database_url="unused://", secret_keys=KEYS, base_url=base)
        yield Rig(
            engine=engine,
            smtp=gatekeeper,
            mailer=Mailer(settings, transport),
            web=web,
            hubspot=hubspot,
            crm_clock=clock,
            tokens=UnsubscribeTokens(KEYS),
        )
