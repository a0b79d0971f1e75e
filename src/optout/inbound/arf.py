"""Feedback-loop reports (R36): a mailbox provider telling us a recipient marked our
email as spam. Pure: a parsed message in, a `FeedbackReport` or None out.

Two shapes are read:

- ARF (RFC 5965): `multipart/report; report-type=feedback-report` with a
  `message/feedback-report` part (Feedback-Type, User-Agent, Version,
  Original-Mail-From, Original-Rcpt-To, Arrival-Date, Reporting-MTA, Source-IP,
  Reported-Domain...) and the reported message, whole (`message/rfc822`) or its
  headers (`text/rfc822-headers`). Yahoo, AOL/Verizon, Comcast, Return Path and
  the providers that follow RFC 9477 send this.
- Microsoft's JMRP (Outlook.com, Hotmail): no report part, the reported message
  attached as `message/rfc822` and marked `X-HmXmrOriginalRecipient`, in a
  message from a Microsoft domain.

Providers often redact the recipient (`redacted@`, `xxxxxxxx@`, a hash; RFC
6590): such addresses are dropped, so only the Message-ID and the
`CFBL-Feedback-ID` (RFC 9477) of the returned message can find the person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from optout.inbound.parse import Headers, Leaf, ParsedMessage, addresses, clean, message_ids

# Feedback types that say a recipient did not want the email (RFC 5965 section 7.3, and
# the opt-out types of the drafts some providers still send).
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other", "opt-out", "opt-out-list"})
NOT_SPAM = "not-spam"  # RFC 6650: the recipient took it back out of the spam folder
MICROSOFT_DOMAINS = frozenset({"hotmail.com", "outlook.com", "live.com", "msn.com"})
_RETURNED_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")
_JMRP_HEADER = "X-HmXmrOriginalRecipient"
# Local parts providers put in place of the recipient's: redacted, xxxxxxx, hashed, ***.
_REDACTED_LOCAL = re.compile(r"^(redacted|hashed|anonymous|x{3,}|\*{3,}|[#*x._-]*redacted.*)$")
_DNS_TYPE = re.compile(r"^\s*dns\s*;\s*", re.IGNORECASE)


@dataclass(frozen=True)
class FeedbackReport:
    format: str  # "arf" or "jmrp"
    feedback_type: str  # abuse, fraud, virus, other, not-spam, auth-failure, ...
    user_agent: str
    version: str
    reporting_domain: str  # who reports: the domain of the report's sender
    reporting_mta: str  # Reporting-MTA, without its "dns;" type
    source_ip: str
    arrival_date: str
    original_mail_from: str
    recipients: tuple[str, ...]  # the complaining address(es), redacted ones left out
    redacted: bool  # the report withheld or masked the recipient
    reported_domains: tuple[str, ...]
    message_id: str  # of the reported message ("" when the report left it out)
    cfbl_feedback_id: str  # the reported message's CFBL-Feedback-ID (RFC 9477), or ""

    @property
    def is_complaint(self) -> bool:
        """A report that says the recipient did not want the email."""
        return self.feedback_type in COMPLAINT_TYPES

    @property
    def is_not_spam(self) -> bool:
        return self.feedback_type == NOT_SPAM

    def summary(self) -> str:
        who = ", ".join(self.recipients[:3]) or ("recipient redacted" if self.redacted else "")
        parts = [
            f"{self.format.upper()} feedback report, type {self.feedback_type}",
            f"from {self.reporting_domain or 'an unnamed provider'}",
            f"({self.user_agent})" if self.user_agent else "",
            f"about {self.message_id}" if self.message_id else "",
            f"for {who}" if who else "",
        ]
        return " ".join(part for part in parts if part)


def feedback_report(parsed: ParsedMessage) -> FeedbackReport | None:
    """An ARF report, else a JMRP complaint, else None."""
    return arf_report(parsed) or jmrp_report(parsed)


def arf_report(parsed: ParsedMessage) -> FeedbackReport | None:
    fields_part = next(
        (leaf for leaf in parsed.leaves if leaf.content_type == "message/feedback-report"), None
    )
    if fields_part is None:
        return None
    if parsed.report_type != "feedback-report" and parsed.content_type != "multipart/report":
        return None  # a feedback part forwarded inside something else: not a report to us
    fields = _fields(fields_part)
    returned = _returned_headers(parsed)
    rcpt_to = [_one(value) for value in _all(fields, "original-rcpt-to")]
    removal = [_one(value) for value in _all(fields, "removal-recipient")]
    named, redacted = _recipients(rcpt_to + removal + _addressed_to(returned))
    redacted = redacted or bool(_all(fields, "redacted-address"))
    return FeedbackReport(
        format="arf",
        feedback_type=_feedback_type(_first(fields, "feedback-type")),
        user_agent=_first(fields, "user-agent")[:200],
        version=_first(fields, "version")[:20],
        reporting_domain=_reporting_domain(parsed, fields),
        reporting_mta=_DNS_TYPE.sub("", _first(fields, "reporting-mta"))[:255],
        source_ip=_first(fields, "source-ip")[:64],
        arrival_date=(_first(fields, "arrival-date") or _first(fields, "received-date"))[:100],
        original_mail_from=_one(_first(fields, "original-mail-from")),
        recipients=named,
        redacted=redacted,
        reported_domains=tuple(
            dict.fromkeys(d.lower()[:255] for d in _all(fields, "reported-domain") if d)
        )[:10],
        message_id=_message_id(returned),
        cfbl_feedback_id=_cfbl_feedback_id(returned),
    )


def jmrp_report(parsed: ParsedMessage) -> FeedbackReport | None:
    """Microsoft's Junk Mail Reporting Program: the reported message, no report part."""
    sender_domain = parsed.from_address.rpartition("@")[2]
    if sender_domain not in MICROSOFT_DOMAINS:
        return None
    returned = next(
        (
            leaf.headers
            for leaf in parsed.leaves
            if leaf.content_type in _RETURNED_TYPES and _header(leaf.headers, _JMRP_HEADER)
        ),
        None,
    )
    if returned is None:
        return None
    original = [_one(_header(returned, _JMRP_HEADER))]
    named, redacted = _recipients(original + _addressed_to(returned))
    return FeedbackReport(
        format="jmrp",
        feedback_type="abuse",
        user_agent="Microsoft JMRP",
        version="",
        reporting_domain=sender_domain,
        reporting_mta="",
        source_ip=_ip_in(parsed.subject),
        arrival_date="",
        original_mail_from=_one(_header(returned, "Return-Path")),
        recipients=named,
        redacted=redacted,
        reported_domains=(),
        message_id=_message_id(returned),
        cfbl_feedback_id=_cfbl_feedback_id(returned),
    )


_TYPE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


def _feedback_type(value: str) -> str:
    """The registered token (RFC 5965 section 7.3); a report without one is abuse."""
    found = _TYPE.match(value.strip().lower())
    return found.group(0) if found else "abuse" if not value.strip() else "other"


def _fields(leaf: Leaf) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for block in leaf.blocks:
        for name, value in block:
            fields.setdefault(name.strip().lower(), []).append(clean(value, 1000).strip())
    return fields


def _all(fields: dict[str, list[str]], name: str) -> list[str]:
    return fields.get(name, [])


def _first(fields: dict[str, list[str]], name: str) -> str:
    return next((value for value in _all(fields, name) if value), "")


def _header(headers: Headers, name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), "")


def _returned_headers(parsed: ParsedMessage) -> Headers:
    """The headers of the reported message: the first returned part that has any."""
    return next(
        (
            leaf.headers
            for leaf in parsed.leaves
            if leaf.content_type in _RETURNED_TYPES and leaf.headers
        ),
        (),
    )


def _one(value: str) -> str:
    """The address in a field such as `<a@b>` or `rfc822; a@b`, lower-cased, or ""."""
    text = value.strip()
    if ";" in text and "@" in text.split(";", 1)[1]:
        text = text.split(";", 1)[1]
    found = addresses(text)
    if found:
        return found[0]
    bare = text.strip("<> \t").lower()  # a redacted form such as `redacted@` fails the check
    return bare[:320] if "@" in bare else ""


def _addressed_to(headers: Headers) -> list[str]:
    return [a for key, value in headers if key.lower() == "to" for a in addresses(value)]


def _recipients(candidates: list[str]) -> tuple[tuple[str, ...], bool]:
    """The usable addresses among `candidates`, and whether any was redacted."""
    named: list[str] = []
    redacted = False
    for address in candidates:
        local, _, domain = address.rpartition("@")
        if not local or not domain or _REDACTED_LOCAL.match(local):
            redacted = redacted or bool(address)
            continue
        named.append(address)
    return tuple(dict.fromkeys(named))[:10], redacted


def _message_id(headers: Headers) -> str:
    ids = message_ids(_header(headers, "Message-ID"))
    return ids[0] if ids else ""


def _cfbl_feedback_id(headers: Headers) -> str:
    """RFC 9477: whitespace in the value is to be ignored."""
    return re.sub(r"\s+", "", _header(headers, "CFBL-Feedback-ID"))[:500]


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _reporting_domain(parsed: ParsedMessage, fields: dict[str, list[str]]) -> str:
    """The provider's domain: the report's sender, else its Reporting-MTA; "" if neither
    is a plain domain name."""
    mta = _DNS_TYPE.sub("", _first(fields, "reporting-mta")).lower().split()
    for name in (parsed.from_address.rpartition("@")[2], mta[0] if mta else ""):
        if _DOMAIN.match(name):
            return name
    return ""


_IP = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]{3,39}:[0-9a-fA-F]{1,4})\b")


def _ip_in(text: str) -> str:
    found = _IP.search(text)
    return found.group(1) if found else ""
