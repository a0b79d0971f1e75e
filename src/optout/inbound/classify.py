"""What came back: a reply, an unsubscribe request, an auto-reply, a bounce, a spam
complaint, or unclassified (R4, R5, R7, R36). Pure: a parsed message in, a
`Classification` out.

One small rule per signal, tried in the order of `RULES` (precedence is data):
a feedback-loop report comes first (it carries our own returned message, which
must never read as a bounce or a reply), then a delivery report beats everything
else (bounces carry auto-reply headers too), the
List-Unsubscribe mailto beats auto-reply markers, automatic markers beat words,
and a message that nothing else claims is a human reply. Every rule tried is
kept in `checks` with its evidence, hits and misses alike, so a decision can be
explained. Words are read in the new text only (`newtext`), never in the quoted
history or a forwarded message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from optout.inbound import phrases
from optout.inbound.arf import FeedbackReport, feedback_report
from optout.inbound.dsn import DeliveryReport, delivery_report
from optout.inbound.newtext import NewText, is_forward_subject, new_text
from optout.inbound.parse import ParsedMessage


class Kind(StrEnum):
    REPLY = "reply"
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class Reading:
    """What the rules look at."""

    parsed: ParsedMessage
    text: NewText
    report: DeliveryReport | None
    feedback: FeedbackReport | None = None


@dataclass(frozen=True)
class Check:
    rule: str
    hit: bool
    evidence: str


@dataclass(frozen=True)
class Classification:
    kind: Kind
    rule: str
    evidence: str
    checks: tuple[Check, ...]
    text: NewText
    report: DeliveryReport | None
    unsubscribe_token: str = ""  # the token of a List-Unsubscribe mailto (R3)
    feedback: FeedbackReport | None = None  # a feedback-loop report (R36)


@dataclass(frozen=True)
class Rule:
    name: str
    kind: Kind
    description: str
    check: Callable[[Reading], str | None]  # the evidence when the rule hits


def _unreadable(r: Reading) -> str | None:
    if r.parsed.readable:
        return None
    return "; ".join(r.parsed.defects[:3]) or "the MIME structure could not be read"


def _complaint(r: Reading) -> str | None:
    if r.feedback is None or not (r.feedback.is_complaint or r.feedback.is_not_spam):
        return None
    return r.feedback.summary()


def _other_feedback(r: Reading) -> str | None:
    if r.feedback is None:
        return None
    return f"{r.feedback.summary()}: not about a recipient's wish, nothing to do"


def _delivery_status(r: Reading) -> str | None:
    if r.report is None or r.report.format != "rfc3464":
        return None
    listed = ", ".join(
        f"{s.address} {s.action or '?'} {s.status or '-'}" for s in r.report.recipients[:5]
    )
    return f"RFC 3464 delivery-status report: {listed or 'no recipient named'}"


def _text_bounce(r: Reading) -> str | None:
    if r.report is None or r.report.format == "rfc3464":
        return None
    listed = ", ".join(f"{s.address} {s.status or s.severity}" for s in r.report.recipients[:5])
    return f"{r.report.format} bounce text: {listed or 'no failed address found'}"


_MAILTO_SUBJECT = re.compile(r"^\s*unsubscribe\s+([A-Za-z0-9_-]{20,600}=*)\s*$", re.IGNORECASE)


def mailto_token(subject: str) -> str:
    """The token of our List-Unsubscribe mailto subject (`unsubscribe <token>`), or ""."""
    found = _MAILTO_SUBJECT.match(subject)
    return found.group(1) if found else ""


def _mailto(r: Reading) -> str | None:
    token = mailto_token(r.parsed.subject)
    return f"subject 'unsubscribe {token[:12]}...' (List-Unsubscribe mailto)" if token else None


def _auto_submitted(r: Reading) -> str | None:
    value = r.parsed.header("Auto-Submitted").strip()
    keyword = value.split(";", 1)[0].split("(", 1)[0].strip().lower()
    return f"Auto-Submitted: {value}" if value and keyword != "no" else None


def _auto_response_suppress(r: Reading) -> str | None:
    value = r.parsed.header("X-Auto-Response-Suppress").strip()
    return f"X-Auto-Response-Suppress: {value}" if value and value.lower() != "none" else None


def _precedence(r: Reading) -> str | None:
    value = r.parsed.header("Precedence").strip()
    known = value.lower() in ("bulk", "junk", "list", "auto_reply", "auto-reply")
    return f"Precedence: {value}" if known else None


_AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply")


def _autoreply_headers(r: Reading) -> str | None:
    for name in _AUTOREPLY_HEADERS:
        value = r.parsed.header(name).strip()
        if r.parsed.has(name) and value.lower() not in ("no", "false", "0"):
            return f"{name}: {value}"
    return None


def _read_receipt(r: Reading) -> str | None:
    parsed = r.parsed
    if parsed.content_type == "multipart/report" and parsed.report_type.startswith("disposition"):
        return "RFC 8098 disposition notification (read receipt)"
    return None


def _ooo_subject(r: Reading) -> str | None:
    found = phrases.out_of_office_subject(r.parsed.subject)
    return f"subject {r.parsed.subject[:120]!r} ({found.language})" if found else None


def _ooo_body(r: Reading) -> str | None:
    found = phrases.out_of_office_body(r.text.text)
    return f"out-of-office wording ({found.language}): {found.name}" if found else None


def _unsubscribe_words(r: Reading) -> str | None:
    hits = phrases.unsubscribe_phrases(r.text.text)
    asked = next((hit for hit in hits if not hit.negated), None)
    if asked is None:
        return None
    return f"asks to unsubscribe ({asked.language}): {asked.clause[:200]!r}"


_REPLY_PREFIX = re.compile(r"^\s*(re|aw|antw|sv|rif|r|res|ynt|odp)\s*(\[\d+\])?\s*:", re.I)


def _unsubscribe_subject(r: Reading) -> str | None:
    subject = r.parsed.subject
    if _REPLY_PREFIX.match(subject) or is_forward_subject(subject):
        return None  # the subject of a reply is ours, not theirs
    asked = phrases.asks_to_unsubscribe(subject)
    return f"subject asks to unsubscribe ({asked.language}): {subject[:120]!r}" if asked else None


def _human(r: Reading) -> str | None:
    snippet = " ".join(r.text.text.split())[:160]
    forwarded = " (a forward; the forwarded message was not read)" if r.text.forwarded else ""
    return f"no automatic marker; new text: {snippet!r}{forwarded}"


RULES: tuple[Rule, ...] = (
    Rule("unreadable", Kind.UNCLASSIFIED, "MIME structure that cannot be read", _unreadable),
    Rule("feedback_report", Kind.COMPLAINT, "feedback-loop report (ARF, JMRP)", _complaint),
    Rule("other_feedback", Kind.UNCLASSIFIED, "other feedback report", _other_feedback),
    Rule("delivery_status", Kind.BOUNCE, "RFC 3464 delivery-status report", _delivery_status),
    Rule("bounce_text", Kind.BOUNCE, "bounce text of a known mail server", _text_bounce),
    Rule("unsubscribe_mailto", Kind.UNSUBSCRIBE, "our List-Unsubscribe mailto", _mailto),
    Rule("auto_submitted", Kind.AUTO_REPLY, "RFC 3834 Auto-Submitted", _auto_submitted),
    Rule("auto_response_suppress", Kind.AUTO_REPLY, "Exchange marker", _auto_response_suppress),
    Rule("precedence", Kind.AUTO_REPLY, "Precedence bulk, junk, list", _precedence),
    Rule("autoreply_header", Kind.AUTO_REPLY, "X-Autoreply and the like", _autoreply_headers),
    Rule("read_receipt", Kind.AUTO_REPLY, "disposition notification", _read_receipt),
    Rule("out_of_office_subject", Kind.AUTO_REPLY, "out-of-office subject", _ooo_subject),
    Rule("out_of_office_text", Kind.AUTO_REPLY, "out-of-office wording", _ooo_body),
    Rule("unsubscribe_words", Kind.UNSUBSCRIBE, "asks to unsubscribe", _unsubscribe_words),
    Rule("unsubscribe_subject", Kind.UNSUBSCRIBE, "subject asks", _unsubscribe_subject),
    Rule("human_reply", Kind.REPLY, "a person wrote back", _human),
)


def classify(parsed: ParsedMessage) -> Classification:
    reading = Reading(
        parsed,
        new_text(parsed),
        delivery_report(parsed) if parsed.readable else None,
        feedback_report(parsed) if parsed.readable else None,
    )
    checks: list[Check] = []
    for rule in RULES:
        evidence = rule.check(reading)
        checks.append(Check(rule.name, evidence is not None, evidence or ""))
        if evidence is not None:
            token = mailto_token(parsed.subject) if rule.name == "unsubscribe_mailto" else ""
            return Classification(
                rule.kind,
                rule.name,
                evidence,
                tuple(checks),
                reading.text,
                reading.report,
                token,
                reading.feedback,
            )
    raise AssertionError("the last rule always hits")  # pragma: no cover
