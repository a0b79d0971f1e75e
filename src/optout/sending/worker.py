"""The send worker: claim, deliver, record; as often as there is due mail (R26, R28).

Each pass claims a batch in one short transaction (with the send-time check) and
composes its messages; then, for each message, records that it is being handed over
(with its Message-ID) in a commit of its own, hands it to the server outside any
transaction, and records the server's 250 answer right away, in the commit that records
the next message's hand-over (the last answer of the batch in one of its own); the
batch is then marked sent in one more.
Any number of workers may run against PostgreSQL. A claim whose worker died is
settled by what was recorded (sending/recovery.py): accepted means sent, handed over
but not accepted means held in doubt for a person, neither means sent again.

The guarantee: every due email is delivered at most once, or else held in doubt
with its reason for a person to decide (or ends with a recorded reason), never lost
without a trace; it breaks if the database loses a commit it confirmed (fsync off, a
restored backup), if two deployments send from copies of the same database, if the
mail server accepts a message without answering 250, or when a person (or the
workspace's automatic re-send) releases an email in doubt that had in fact arrived;
the same Message-ID is reused so that a receiver can drop that duplicate.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from functools import cached_property, lru_cache, partial

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.config import Settings
from optout.db import conflicts, statistics
from optout.db import tables as t
from optout.db.engine import read_transaction
from optout.errors import InvalidInput
from optout.jobs import runner as job_runner
from optout.mail.compose import compose
from optout.mail.dkim import DkimSigner
from optout.mail.templates import render
from optout.mail.tokens import UnsubscribeTokens
from optout.sending import crash
from optout.sending.claim import Claim, claim
from optout.sending.mailbox_transports import MailboxTransports
from optout.sending.outcome import (
    Sent,
    give_up,
    hard_bounce,
    record_accepted,
    record_handover,
    record_sent,
    retry_later,
)
from optout.sending.recovery import hold, resend_due, settle_expired
from optout.sending.threads import Thread, subject_of, threads
from optout.sending.transports import (
    InDoubtDeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
    transport_from_url,
)
from optout.services import decision_index
from optout.services.enrollments import automatic
from optout.services.send_queue.realign import due_now

OPTIMIZE_EVERY_SECONDS = 3600  # how often the worker tunes the planner statistics

log = logging.getLogger("optout.worker")

DEFAULT_FROM = "outbound@optout.invalid"
IN_DOUBT = (
    "the connection to the mail server was lost after the message was sent and before "
    "the server answered, so it may or may not have been delivered"
)


# Between passes, how often the worker looks for people to enroll automatically.
ENROLL_TICK_SECONDS = 0.5


@dataclass
class PassResult:
    claimed: int = 0
    sent: int = 0
    cancelled: int = 0  # by the send-time check
    retrying: int = 0
    failed: int = 0
    in_doubt: int = 0  # held: handed to the server, its answer unknown
    settled_sent: int = 0  # accepted by the server in an earlier, interrupted pass
    enrolled: int = 0  # by sequences that enroll by themselves
    would_send: list[Claim] = field(default_factory=list)  # dry runs only


@dataclass
class Mailer:
    """Everything delivery needs besides the claim: where links point, keys, signer."""

    settings: Settings
    transport: Transport
    dkim: DkimSigner | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        signer = None
        if settings.dkim is not None:
            selector, domain, key_file = settings.dkim
            signer = DkimSigner.from_files(selector, domain, key_file)
        return cls(settings, transport_from_url(settings.transport_url), signer)

    @cached_property
    def tokens(self) -> UnsubscribeTokens:
        return UnsubscribeTokens(self.settings.signing_keys())

    @cached_property
    def mailbox_transports(self) -> MailboxTransports:
        return MailboxTransports(self.settings.encryption_keys)

    def transport_for(self, item: Claim) -> Transport:
        """The mailbox's own mail server, or the shared relay."""
        own = self.mailbox_transports.get(
            mailbox_id=item.mailbox_id, smtp_url=item.smtp_url, smtp_password=item.smtp_password
        )
        return own or self.transport

    def flush(self) -> None:
        self.transport.flush()
        self.mailbox_transports.flush()

    def message(
        self, item: Claim, now: datetime, thread: Thread | None = None
    ) -> tuple[str, bytes]:
        """The Message-ID and wire form of a claimed email; a follow-up continues
        `thread` (R39)."""
        token = self.tokens.issue(
            workspace_id=item.workspace_id,
            person_id=item.person["id"],
            email=item.person["email"],
        )
        unsubscribe_url = self.settings.unsubscribe_url(token)
        sender = item.from_address or DEFAULT_FROM
        domain = _address_of(sender).rpartition("@")[2] or "optout.invalid"
        inbound = f"{self.settings.inbound_local_part}@{domain}"
        rendered = render(
            subject=subject_of(item.subject, thread),
            body_text=item.body_text,
            body_html=item.body_html,
            person=item.person,
            company=item.company,
            sender={"email": sender, "signature": item.signature},
            unsubscribe_url=unsubscribe_url,
        )
        message_id = (
            item.message_id
            or f"<{uuid.uuid5(uuid.NAMESPACE_URL, f'optout:{item.email_id}')}@{domain}>"
        )
        return message_id, compose(
            rendered=rendered,
            from_address=sender,
            reply_to=item.reply_to or None,
            to_address=item.person["email"],
            unsubscribe_url=unsubscribe_url,
            unsubscribe_mailto=f"mailto:{inbound}?subject=unsubscribe%20{token}",
            feedback_address=inbound,
            feedback_id=self.tokens.feedback_ids.issue(
                workspace_id=item.workspace_id,
                sequence_id=item.sequence_id,
                email_id=item.email_id,
            ),
            message_id=message_id,
            now=now,
            dkim=self.dkim,
            in_reply_to=thread.message_id if thread is not None else None,
            to_name=" ".join(
                part
                for part in (item.person.get("first_name"), item.person.get("last_name"))
                if part
            ),
        )


@lru_cache(maxsize=1024)
def _address_of(sender: str) -> str:
    """The address of a From (`Name <address>`); a pass has a few, one per mailbox."""
    return parseaddr(sender)[1]


def run_once(
    engine: Engine,
    *,
    mailer: Mailer,
    now: datetime,
    batch: int = 200,
    dry_run: bool = False,
    progress: Callable[[PassResult], None] | None = None,
) -> PassResult:
    """Send everything due at `now`. A dry run claims one batch, shows it, and rolls back."""
    result = PassResult()
    if dry_run:
        with engine.connect() as db, db.begin() as transaction:
            claimed = claim(db, now=now, limit=batch)
            result.claimed, result.cancelled = len(claimed.claims), claimed.cancelled
            result.would_send = claimed.claims
            transaction.rollback()
        return result
    # Each transaction of the pass runs again after a deadlock (`optout.db.conflicts`).
    for attempt in conflicts.attempts(engine):
        with attempt as db:
            # Clock rules move with time, not with writes: write their matches down for
            # `now`, so the reads of this pass and until the next one stay narrow. In id
            # order, as every path takes the index's locks (`services.decision_index`).
            workspaces = sa.select(t.workspaces.c.id).order_by(t.workspaces.c.id)
            for workspace_id in db.scalars(workspaces):
                decision_index.advance(db, workspace_id=workspace_id, now=now)
    result.enrolled += enroll_automatically(engine, now=now)
    for attempt in conflicts.attempts(engine):
        with attempt as db:
            resend_due(db, now=now)
            result.settled_sent, result.in_doubt = settle_expired(db, now=now)
    with engine.begin() as db:
        due_now(db, now=now)  # a due email outside its sending window waits for it (R38)
    while True:
        claimed = conflicts.run(engine, lambda db: claim(db, now=now, limit=batch))
        crash.reached("after_claim")
        result.claimed += len(claimed.claims)
        result.cancelled += claimed.cancelled
        if not claimed.claims and not claimed.cancelled:
            return result
        _deliver(engine, mailer=mailer, claims=claimed.claims, now=now, result=result)
        if progress is not None:
            progress(result)


def enroll_automatically(engine: Engine, *, now: datetime) -> int:
    """Sequences that enroll by themselves: enroll who came to match since the last pass,
    workspace by workspace in id order (the index's lock order), each sequence's batch in
    a transaction of its own so that the write lock is held for one batch at a time; the
    number enrolled."""
    with read_transaction(engine) as db:
        workspace_ids = list(db.scalars(sa.select(t.workspaces.c.id).order_by(t.workspaces.c.id)))
    enrolled = 0
    for workspace_id in workspace_ids:
        ready = conflicts.run(
            engine, partial(automatic.waiting, workspace_id=workspace_id, now=now)
        )
        for one in ready:
            enrolled += conflicts.run(
                engine,
                partial(
                    automatic.enroll_queued,
                    workspace_id=workspace_id,
                    waiting=one,
                    now=now,
                ),
            )
    return enrolled


def _someone_queued(engine: Engine) -> bool:
    with read_transaction(engine) as db:
        return db.scalar(sa.select(t.enrollment_queue.c.id).limit(1)) is not None


def _wait(
    engine: Engine, *, stop: threading.Event, seconds: float, clock: Callable[[], datetime]
) -> None:
    """Wait for the next pass, enrolling meanwhile whoever a sequence that enrolls by
    itself has queued (a new member is enrolled within about `ENROLL_TICK_SECONDS` of the
    commit that made them one); someone enrolled starts the next pass at once, so that a
    first email due now goes out."""
    until = time.monotonic() + seconds
    while not stop.wait(min(ENROLL_TICK_SECONDS, max(0.0, until - time.monotonic()))):
        if time.monotonic() >= until:
            return
        try:
            if _someone_queued(engine) and enroll_automatically(engine, now=clock()):
                return
        except Exception:
            log.exception("automatic enrollment failed; trying again")


def _deliver(
    engine: Engine, *, mailer: Mailer, claims: list[Claim], now: datetime, result: PassResult
) -> None:
    sent: list[Sent] = []
    transient: list[tuple[Claim, str]] = []
    bounced: list[tuple[Claim, str]] = []
    broken: list[tuple[Claim, str]] = []
    doubtful: list[tuple[Claim, str]] = []
    refused_here: set[str] = set()  # addresses the server refused earlier in this pass
    with engine.connect() as db:
        continuing = threads(db, emails=[(item.email_id, item.enrollment_id) for item in claims])
    # Every message of the batch is composed before the first goes out, so that between
    # the server's 250 and the commit recording it nothing runs but that commit.
    composed: list[tuple[Claim, str, bytes]] = []
    for item in claims:
        try:
            message_id, message = mailer.message(item, now, continuing.get(item.email_id))
        except InvalidInput as exc:  # a template or an address that cannot make a message
            broken.append((item, exc.message))
            continue
        composed.append((item, message_id, message))
        crash.reached("after_compose")
    answered: tuple[int, str] | None = None  # the last 250, not yet recorded
    for item, message_id, message in composed:
        if item.person["email"] in refused_here:
            # Claimed before the bounce: back to the queue, where the next claim's check
            # finds the address suppressed and ends the email with that reason.
            transient.append((item, "the mail server refused this address earlier in this pass"))
            continue
        # One commit records the previous message's answer and this one's hand-over.
        for attempt in conflicts.attempts(engine):
            with attempt as db:
                _record_answer(db, answered, now=now)
                mine = record_handover(
                    db,
                    email_id=item.email_id,
                    attempts=item.attempts,
                    message_id=message_id,
                    now=now,
                )
        answered = None
        if not mine:
            log.warning("email %s was claimed again by another worker; not sent", item.email_id)
            continue
        crash.reached("after_handover")
        try:
            reply = mailer.transport_for(item).send(
                message,
                sender=_address_of(item.from_address or DEFAULT_FROM),
                recipients=[item.person["email"]],
            )
        except InDoubtDeliveryError as exc:
            doubtful.append((item, f"the connection to the mail server was lost: {exc}"))
            continue
        except TransientDeliveryError as exc:
            transient.append((item, str(exc)))
            continue
        except PermanentDeliveryError as exc:
            # Only a refusal of this recipient says anything about the address (R7); a
            # refused login, sender or content is a problem of ours, not a bounce.
            target = bounced if item.person["email"] in exc.refused else broken
            target.append((item, str(exc)))
            if target is bounced:
                refused_here.add(item.person["email"])
            continue
        crash.reached("after_answer")
        answered = (item.email_id, reply)
        sent.append(Sent(item.email_id, message_id))
    if answered is not None:
        for attempt in conflicts.attempts(engine):
            with attempt as db:
                _record_answer(db, answered, now=now)
    crash.reached("before_mark_sent")
    try:
        mailer.flush()
    except OSError as exc:  # not durably handed over: try these again later
        transient.extend(
            (item, f"could not flush the transport: {exc}")
            for item in claims
            if any(s.email_id == item.email_id for s in sent)
        )
        sent = []
    for attempt in conflicts.attempts(engine):
        with attempt as db:
            record_sent(db, sent=sent, now=now)
            retrying = [
                retry_later(
                    db, email_id=item.email_id, attempts=item.attempts, error=error, now=now
                )
                for item, error in transient
            ]
            for item, error in bounced:
                hard_bounce(
                    db, email_id=item.email_id, address=item.person["email"], reason=error, now=now
                )
            for item, error in broken:
                give_up(db, email_id=item.email_id, reason=f"could not send: {error}", now=now)
            hold(db, email_ids=[item.email_id for item, _ in doubtful], reason=IN_DOUBT, now=now)
    result.retrying += sum(retrying)
    result.failed += len(retrying) - sum(retrying)
    crash.reached("after_mark_sent")
    result.sent += len(sent)
    result.in_doubt += len(doubtful)
    result.failed += len(bounced) + len(broken)
    for item, error in [*transient, *bounced, *broken, *doubtful]:
        log.warning(
            "delivery of email %s to %s failed: %s", item.email_id, item.person["email"], error
        )


def _record_answer(db: Connection, answered: tuple[int, str] | None, *, now: datetime) -> None:
    """Record the server's 250 for a message, when there is one to record."""
    if answered is not None:
        email_id, reply = answered
        record_accepted(db, email_id=email_id, reply=reply, now=now)


def run_forever(
    engine: Engine,
    *,
    mailer: Mailer,
    stop: threading.Event,
    poll_seconds: float = 5.0,
    batch: int = 200,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Pass after pass until `stop` is set; errors are logged and the loop goes on."""
    tuned = time.monotonic()
    while not stop.is_set():
        try:
            if time.monotonic() - tuned > OPTIMIZE_EVERY_SECONDS:
                with engine.begin() as db:
                    statistics.optimize(db)
                tuned = time.monotonic()
            result = run_once(engine, mailer=mailer, now=clock(), batch=batch)
            job_runner.worker_pass(engine, clock=clock)
            if result.claimed or result.cancelled:
                log.info(
                    "sent %s, cancelled %s, retrying %s, failed %s",
                    result.sent,
                    result.cancelled,
                    result.retrying,
                    result.failed,
                )
        except Exception:
            log.exception("worker pass failed; trying again in %s s", poll_seconds)
        _wait(engine, stop=stop, seconds=poll_seconds, clock=clock)
