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

The messages of a batch are matched together (`match_all`): the emails they name by id
are read in one round of statements, the token people and addresses of those it leaves
unmatched in a second (`lookups`), and each message's match is then decided from those
answers, in the order above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from optout.articles import with_article
from optout.errors import InvalidInput
from optout.inbound.arf import FeedbackReport
from optout.inbound.classify import Classification, Kind
from optout.inbound.dsn import DeliveryReport
from optout.inbound.lookups import Lookups, SentEmail
from optout.inbound.parse import ParsedMessage, message_ids
from optout.mail.tokens import UnsubscribeTokens
from optout.normalize import normalize_email

# Message-IDs of one message that are looked up, at most.
MAX_IDS = 100
# A VERP tag shorter than this is no token of ours.
MIN_VERP_TOKEN = 20


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
    email: str = ""  # the person's address, when a person is known


@dataclass(frozen=True)
class Unmatched:
    reason: str
    workspace_id: int | None = None  # when the workspace is known but not the email


Match = Target | Unmatched


def match_all(
    db: Connection,
    messages: Sequence[tuple[ParsedMessage, Classification]],
    *,
    workspace_id: int | None,
    tokens: UnsubscribeTokens | None,
    now: datetime,
    window: timedelta,
) -> list[Match]:
    """The match of each message, in order: the emails every message names by id are read
    at once, then the token people and addresses of those still unmatched."""
    lookups = Lookups(workspace_id, now - window, tokens)
    for parsed, verdict in messages:
        _name(lookups, parsed, verdict)
    lookups.read_named(db)
    found: list[Match] = []
    pending: list[int] = []
    for i, (parsed, verdict) in enumerate(messages):
        lookups.missed = False
        found.append(match(lookups, parsed, verdict, window=window))
        if lookups.missed:
            pending.append(i)
    if pending:
        lookups.read_asked(db)
        for i in pending:
            parsed, verdict = messages[i]
            found[i] = match(lookups, parsed, verdict, window=window)
    return found


def match(
    lookups: Lookups, parsed: ParsedMessage, verdict: Classification, *, window: timedelta
) -> Match:
    """One message's match from what `lookups` has read."""
    if verdict.kind is Kind.COMPLAINT and verdict.feedback is not None:
        return _complaint(lookups, verdict.feedback, window=window)
    if verdict.kind is Kind.BOUNCE and verdict.report is not None:
        return _bounce(lookups, parsed, verdict.report, window=window)
    return _reply(lookups, parsed, mailto_token=verdict.unsubscribe_token, window=window)


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
    """The email one reply answers, on its own (a batch is matched by `match_all`)."""
    lookups = Lookups(workspace_id, now - window, tokens)
    lookups.want_message_ids(_wanted(_candidates(parsed, None)))
    lookups.read_named(db)
    found = _reply(lookups, parsed, mailto_token=mailto_token, window=window)
    if lookups.missed:
        lookups.read_asked(db)
        found = _reply(lookups, parsed, mailto_token=mailto_token, window=window)
    return found


def _name(lookups: Lookups, parsed: ParsedMessage, verdict: Classification) -> None:
    """Note what a message names by id (Message-IDs, a feedback id) for the first round."""
    if verdict.kind is Kind.COMPLAINT and verdict.feedback is not None:
        feedback = verdict.feedback
        if feedback.cfbl_feedback_id and lookups.tokens is not None:
            lookups.feedback_of(feedback.cfbl_feedback_id)
        if feedback.message_id:
            lookups.want_message_ids([feedback.message_id])
        return
    report = verdict.report if verdict.kind is Kind.BOUNCE else None
    lookups.want_message_ids(_wanted(_candidates(parsed, report)))


def _reply(
    lookups: Lookups, parsed: ParsedMessage, *, mailto_token: str, window: timedelta
) -> Match:
    found = _by_message_ids(lookups, parsed, report=None)
    if found is not None:
        return found
    if mailto_token and lookups.tokens is not None:
        target = _by_token(lookups, mailto_token, "unsubscribe_token")
        if target is not None:
            return target
    verp = _by_verp(lookups, parsed)
    if verp is not None:
        return verp
    sender = parsed.from_address
    if not sender:
        return Unmatched("no In-Reply-To or References of ours, no token, and no From address")
    return _by_address(lookups, sender, by="from_address") or Unmatched(
        f"answers none of our emails: no Message-ID of ours, no token, and nothing sent to "
        f"{sender} in the last {window.days} days",
        lookups.scope,
    )


def _bounce(
    lookups: Lookups, parsed: ParsedMessage, report: DeliveryReport, *, window: timedelta
) -> Match:
    found = _by_message_ids(lookups, parsed, report=report)
    if found is not None:
        return found
    verp = _by_verp(lookups, parsed)
    if verp is not None:
        return verp
    for recipient in report.recipients:
        for address in recipient.addresses:
            target = _by_address(lookups, address, by="failed_recipient")
            if target is not None:
                return target
    named = ", ".join(r.address for r in report.recipients[:5]) or "no address"
    return Unmatched(f"a bounce for {named}, none of which we emailed recently", lookups.scope)


def _complaint(lookups: Lookups, report: FeedbackReport, *, window: timedelta) -> Match:
    """The email a feedback-loop report is about; only emails we sent count."""
    refused = ""
    if report.cfbl_feedback_id:
        found = _by_feedback_id(lookups, report.cfbl_feedback_id)
        if isinstance(found, Target):
            return found
        refused = f"; its CFBL-Feedback-ID {found}"
    if report.message_id:
        sent = lookups.by_message_id.get(report.message_id)
        if sent is not None:
            return _target(
                sent,
                "report_message_id",
                f"the reported message {report.message_id} is our email {sent.id}",
            )
    for address in report.recipients:
        target = _by_address(lookups, address, by="complainant")
        if target is not None:
            return target
    named = ", ".join(report.recipients[:3]) or (
        "a redacted recipient" if report.redacted else "no recipient"
    )
    about = f"message {report.message_id}" if report.message_id else "a message without an id"
    return Unmatched(
        f"{with_article(report.feedback_type)} report about {about} for {named}: none of our sent "
        f"emails{refused}",
        lookups.scope,
    )


def _by_feedback_id(lookups: Lookups, value: str) -> Target | str:
    """The sent email a CFBL-Feedback-ID names, or why it names none."""
    if lookups.tokens is None:
        return "could not be read (no link keys)"
    claims = lookups.feedback_of(value)
    if claims is None:
        return "is not one of ours"
    sent = lookups.by_email_id.get(claims.email_id)
    if sent is not None and sent.workspace_id != claims.workspace_id:
        sent = None
    if (
        sent is None
        or sent.sequence_id is None
        or not claims.verify(
            workspace_id=sent.workspace_id, sequence_id=sent.sequence_id, email_id=sent.id
        )
    ):
        return "does not verify"
    return _target(sent, "cfbl_feedback_id", f"CFBL-Feedback-ID names our email {sent.id}")


def _target(sent: SentEmail, by: str, evidence: str) -> Target:
    return Target(
        by,
        sent.workspace_id,
        sent.person_id,
        sent.enrollment_id,
        sent.id,
        sent.sequence_id,
        evidence,
        sent.email,
    )


def _candidates(parsed: ParsedMessage, report: DeliveryReport | None) -> list[tuple[str, str]]:
    """The Message-IDs a message answers, in the order they are tried."""
    candidates: list[tuple[str, str]] = []
    if report is not None and report.original_message_id:
        candidates.append(("report_message_id", report.original_message_id))
    candidates += [("in_reply_to", i) for i in message_ids(parsed.header("In-Reply-To"))]
    references = message_ids(" ".join(parsed.all("References")))
    candidates += [("references", i) for i in reversed(references)]
    return candidates


def _wanted(candidates: list[tuple[str, str]]) -> list[str]:
    return list(dict.fromkeys(i for _, i in candidates))[:MAX_IDS]


def _by_message_ids(
    lookups: Lookups, parsed: ParsedMessage, *, report: DeliveryReport | None
) -> Target | None:
    candidates = _candidates(parsed, report)
    if not candidates:
        return None
    wanted = set(_wanted(candidates))
    for by, message_id in candidates:
        sent = lookups.by_message_id.get(message_id) if message_id in wanted else None
        if sent is not None:
            return _target(sent, by, f"{by} {message_id} is our email {sent.id}")
    return None


def _by_token(lookups: Lookups, token: str, by: str) -> Target | None:
    claims = lookups.claims_of(token)
    if claims is None:
        return None
    person = lookups.person(claims.person_id)
    if person is None or person.workspace_id != claims.workspace_id:
        return None  # no longer on file
    if not claims.matches(person.email):
        return None  # re-addressed since the token was issued
    if lookups.scope is not None and person.workspace_id != lookups.scope:
        return None
    evidence = f"{by.replace('_', ' ')} of person {claims.person_id}"
    sent = lookups.latest.get(claims.person_id)
    if sent is None:
        return Target(
            by, person.workspace_id, claims.person_id, None, None, None, evidence, person.email
        )
    return _target(sent, by, evidence)


def _verp_tags(parsed: ParsedMessage) -> list[str]:
    tags = []
    for address in parsed.recipients():
        local = address.split("@", 1)[0]
        _, plus, tag = local.partition("+")
        if plus and len(tag) >= MIN_VERP_TOKEN:
            tags.append(tag)
    return tags


def _by_verp(lookups: Lookups, parsed: ParsedMessage) -> Target | None:
    if lookups.tokens is None:
        return None
    for tag in _verp_tags(parsed):
        target = _by_token(lookups, tag, "verp_token")
        if target is not None:
            return target
    return None


def _by_address(lookups: Lookups, address: str, *, by: str) -> Match | None:
    try:
        canonical = normalize_email(address).address
    except InvalidInput:
        return None
    sent = lookups.sent_to(canonical)
    if not sent:
        return None
    if len({email.workspace_id for email in sent}) > 1:  # do not guess whose message it is
        return Unmatched(f"{canonical} was emailed from several workspaces; cannot tell whose")
    latest = sent[0]
    return _target(latest, by, f"our most recent email to {canonical} (email {latest.id})")
