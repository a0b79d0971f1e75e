"""Which of our emails an inbound message answers, in this order:

1. its In-Reply-To, then its References, against the Message-IDs of sent emails
   (for a bounce, also the Message-ID of the returned message);
2. a token we issued: the `unsubscribe <token>` subject of our List-Unsubscribe
   mailto, or a VERP-style `+token` in an address it was sent to;
3. its sender (for a bounce: the failed recipient) and our most recent email to
   that address within the window.

A spam complaint (R36) names the email in the message it returns: its
`CFBL-Feedback-ID` (whose HMAC is checked, so a forged one finds nobody), then its
Message-ID, then the complaining address when the provider did not redact it.

A way in that serves one workspace passes `workspace_id` and only that
workspace's emails are considered; one that serves all lets the match decide,
and leaves the message unmatched when the address was emailed by several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.articles import with_article
from optout.db import tables as t
from optout.db.hints import broadly
from optout.errors import InvalidInput, NotFound
from optout.inbound.arf import FeedbackReport
from optout.inbound.dsn import DeliveryReport
from optout.inbound.parse import ParsedMessage, message_ids
from optout.normalize import normalize_email
from optout.sending.feedback_ids import InvalidFeedbackId
from optout.sending.tokens import InvalidToken, UnsubscribeTokens
from optout.services import unsubscribes


@dataclass(frozen=True)
class Target:
    """The email (and so the person, enrollment and workspace) a message answers."""

    by: str  # in_reply_to, references, report_message_id, unsubscribe_token, verp_token, ...
    workspace_id: int
    person_id: int | None
    enrollment_id: int | None
    email_id: int | None
    sequence_id: int | None
    evidence: str


@dataclass(frozen=True)
class Unmatched:
    reason: str
    workspace_id: int | None = None  # when the workspace is known but not the email


Match = Target | Unmatched


def match_reply(
    db: Connection,
    parsed: ParsedMessage,
    *,
    workspace_id: int | None,
    tokens: UnsubscribeTokens | None,
    mailto_token: str,
    now: datetime,
    window: timedelta,
) -> Match:
    found = _by_message_ids(db, parsed, workspace_id=workspace_id, report=None)
    if found is not None:
        return found
    if mailto_token and tokens is not None:
        target = _by_token(db, mailto_token, "unsubscribe_token", workspace_id, tokens)
        if target is not None:
            return target
    verp = _by_verp(db, parsed, workspace_id=workspace_id, tokens=tokens)
    if verp is not None:
        return verp
    sender = parsed.from_address
    if not sender:
        return Unmatched("no In-Reply-To or References of ours, no token, and no From address")
    return _by_address(
        db, sender, by="from_address", workspace_id=workspace_id, since=now - window
    ) or Unmatched(
        f"answers none of our emails: no Message-ID of ours, no token, and nothing sent to "
        f"{sender} in the last {window.days} days",
        workspace_id,
    )


def match_bounce(
    db: Connection,
    parsed: ParsedMessage,
    report: DeliveryReport,
    *,
    workspace_id: int | None,
    tokens: UnsubscribeTokens | None,
    now: datetime,
    window: timedelta,
) -> Match:
    found = _by_message_ids(db, parsed, workspace_id=workspace_id, report=report)
    if found is not None:
        return found
    verp = _by_verp(db, parsed, workspace_id=workspace_id, tokens=tokens)
    if verp is not None:
        return verp
    for recipient in report.recipients:
        for address in recipient.addresses:
            target = _by_address(
                db, address, by="failed_recipient", workspace_id=workspace_id, since=now - window
            )
            if target is not None:
                return target
    named = ", ".join(r.address for r in report.recipients[:5]) or "no address"
    return Unmatched(f"a bounce for {named}, none of which we emailed recently", workspace_id)


def match_complaint(
    db: Connection,
    report: FeedbackReport,
    *,
    workspace_id: int | None,
    tokens: UnsubscribeTokens | None,
    now: datetime,
    window: timedelta,
) -> Match:
    """The email a feedback-loop report is about; only emails we sent count."""
    refused = ""
    if report.cfbl_feedback_id:
        found = _by_feedback_id(db, report.cfbl_feedback_id, workspace_id, tokens)
        if isinstance(found, Target):
            return found
        refused = f"; its CFBL-Feedback-ID {found}"
    if report.message_id:
        o = t.outbound_emails
        row = db.execute(
            _scoped(_sent_emails().where(o.c.message_id == report.message_id), workspace_id)
        ).first()
        if row is not None:
            return _target(
                row,
                "report_message_id",
                f"the reported message {report.message_id} is our email {row.id}",
            )
    for address in report.recipients:
        target = _by_address(
            db, address, by="complainant", workspace_id=workspace_id, since=now - window
        )
        if target is not None:
            return target
    named = ", ".join(report.recipients[:3]) or (
        "a redacted recipient" if report.redacted else "no recipient"
    )
    about = f"message {report.message_id}" if report.message_id else "a message without an id"
    return Unmatched(
        f"{with_article(report.feedback_type)} report about {about} for {named}: none of our sent "
        f"emails{refused}",
        workspace_id,
    )


def _by_feedback_id(
    db: Connection, value: str, workspace_id: int | None, tokens: UnsubscribeTokens | None
) -> Target | str:
    """The sent email a CFBL-Feedback-ID names, or why it names none."""
    if tokens is None:
        return "could not be read (no link keys)"
    try:
        claims = tokens.feedback_ids.read(value)
    except InvalidFeedbackId:
        return "is not one of ours"
    o = t.outbound_emails
    row = db.execute(
        _scoped(
            _sent_emails().where(
                o.c.id == claims.email_id, o.c.workspace_id == claims.workspace_id
            ),
            workspace_id,
        )
    ).first()
    if row is None or not claims.verify(
        workspace_id=row.workspace_id, sequence_id=row.sequence_id, email_id=row.id
    ):
        return "does not verify"
    return _target(row, "cfbl_feedback_id", f"CFBL-Feedback-ID names our email {row.id}")


def _scoped(query: sa.Select[Any], workspace_id: int | None) -> sa.Select[Any]:
    o = t.outbound_emails
    return query if workspace_id is None else query.where(o.c.workspace_id == workspace_id)


def _sent_emails() -> sa.Select[Any]:
    o, e = t.outbound_emails, t.enrollments
    return (
        sa.select(
            o.c.id,
            o.c.workspace_id,
            o.c.person_id,
            o.c.enrollment_id,
            e.c.sequence_id,
            o.c.message_id,
            o.c.sent_at,
        )
        .join(e, e.c.id == o.c.enrollment_id)
        # Nearly every email is sent: SQLite must start from the Message-ID or the person.
        .where(broadly(o.c.status == "sent"))
    )


def _target(row: Any, by: str, evidence: str) -> Target:
    return Target(
        by, row.workspace_id, row.person_id, row.enrollment_id, row.id, row.sequence_id, evidence
    )


def _by_message_ids(
    db: Connection,
    parsed: ParsedMessage,
    *,
    workspace_id: int | None,
    report: DeliveryReport | None,
) -> Target | None:
    candidates: list[tuple[str, str]] = []
    if report is not None and report.original_message_id:
        candidates.append(("report_message_id", report.original_message_id))
    candidates += [("in_reply_to", i) for i in message_ids(parsed.header("In-Reply-To"))]
    references = message_ids(" ".join(parsed.all("References")))
    candidates += [("references", i) for i in reversed(references)]
    if not candidates:
        return None
    wanted = list(dict.fromkeys(i for _, i in candidates))[:100]
    o = t.outbound_emails
    rows = db.execute(_scoped(_sent_emails().where(o.c.message_id.in_(wanted)), workspace_id))
    by_id = {row.message_id: row for row in rows}
    for by, message_id in candidates:
        row = by_id.get(message_id)
        if row is not None:
            return _target(row, by, f"{by} {message_id} is our email {row.id}")
    return None


def _by_token(
    db: Connection, token: str, by: str, workspace_id: int | None, tokens: UnsubscribeTokens
) -> Target | None:
    try:
        claims = tokens.read(token)
        person = unsubscribes.recipient(db, claims=claims)
    except (InvalidToken, NotFound, unsubscribes.AddressChanged):
        return None
    if workspace_id is not None and person.workspace_id != workspace_id:
        return None
    o = t.outbound_emails
    row = db.execute(
        _sent_emails()
        .where(o.c.person_id == person.person_id, o.c.workspace_id == person.workspace_id)
        .order_by(o.c.sent_at.desc(), o.c.id.desc())
        .limit(1)
    ).first()
    evidence = f"{by.replace('_', ' ')} of person {person.person_id}"
    if row is None:
        return Target(by, person.workspace_id, person.person_id, None, None, None, evidence)
    return _target(row, by, evidence)


def _by_verp(
    db: Connection,
    parsed: ParsedMessage,
    *,
    workspace_id: int | None,
    tokens: UnsubscribeTokens | None,
) -> Target | None:
    if tokens is None:
        return None
    for address in parsed.recipients():
        local = address.split("@", 1)[0]
        _, plus, tag = local.partition("+")
        if plus and len(tag) >= 20:
            target = _by_token(db, tag, "verp_token", workspace_id, tokens)
            if target is not None:
                return target
    return None


def _by_address(
    db: Connection, address: str, *, by: str, workspace_id: int | None, since: datetime
) -> Match | None:
    try:
        canonical = normalize_email(address).address
    except InvalidInput:
        return None
    o, p = t.outbound_emails, t.people
    rows: Sequence[Any] = db.execute(
        _scoped(
            _sent_emails()
            .join(p, p.c.id == o.c.person_id)
            .where(p.c.email == canonical, o.c.sent_at >= since)
            .order_by(o.c.sent_at.desc(), o.c.id.desc())
            .limit(20),
            workspace_id,
        )
    ).all()
    if not rows:
        return None
    if len({row.workspace_id for row in rows}) > 1:  # do not guess whose message it is
        return Unmatched(f"{canonical} was emailed from several workspaces; cannot tell whose")
    row = rows[0]
    return _target(row, by, f"our most recent email to {canonical} (email {row.id})")
