"""Delivery reports (R7): RFC 3464 `multipart/report; report-type=delivery-status`,
and the plain-text bounces of servers that send no report (Postfix, Exchange,
Gmail, qmail, Exim), recognized by their wording, with the failed address taken
from the text. Pure: a parsed message in, a `DeliveryReport` or None out.

Severity follows the status code (RFC 3463): a `5.x.x` that says the address is
bad is permanent; `4.x.x`, and a `5.x.x` refusal of the message rather than the
address (policy, spam, content, size), are transient and counted. An RFC 3464
`Action: delayed` is only a warning (the server keeps trying), and `delivered`,
`relayed` and `expanded` are no failure at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from optout.inbound.newtext import html_to_text
from optout.inbound.parse import Headers, ParsedMessage, addresses, clean, message_ids

Severity = Literal["permanent", "transient", "delayed", "none"]

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d\b")
_ADDR = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?"
_ANY_ADDRESS = re.compile(_ADDR)
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "maildelivery")


@dataclass(frozen=True)
class RecipientStatus:
    address: str  # the final recipient
    action: str  # failed, delayed, delivered, relayed, expanded (RFC 3464)
    status: str  # enhanced status code, e.g. 5.1.1; "" when none was given
    diagnostic: str
    severity: Severity
    original: str = ""  # the address we sent to, when the report names it (RFC 3464)

    @property
    def failed(self) -> bool:
        return self.severity in ("permanent", "transient")

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for a in (self.address, self.original) if a))


@dataclass(frozen=True)
class DeliveryReport:
    format: str  # rfc3464, postfix, exchange, gmail, qmail, exim, generic
    recipients: tuple[RecipientStatus, ...]
    original_message_id: str  # of the message that bounced, when the report carries it
    reporting_mta: str = ""


def delivery_report(parsed: ParsedMessage) -> DeliveryReport | None:
    """An RFC 3464 report if the message holds one, else a recognized text bounce."""
    return rfc3464_report(parsed) or text_bounce(parsed)


def rfc3464_report(parsed: ParsedMessage) -> DeliveryReport | None:
    status_parts = [
        leaf
        for leaf in parsed.leaves
        if leaf.content_type in ("message/delivery-status", "message/global-delivery-status")
    ]
    if not status_parts:
        return None
    per_message: Headers = ()
    recipients: list[RecipientStatus] = []
    for leaf in status_parts:
        for block in leaf.blocks:
            fields = {name.lower(): value for name, value in block}
            if "final-recipient" not in fields and "original-recipient" not in fields:
                per_message = per_message or block
                continue
            recipient = _recipient(fields)
            if recipient is not None:
                recipients.append(recipient)
    reporting = next((v for k, v in per_message if k.lower() == "reporting-mta"), "")
    return DeliveryReport(
        "rfc3464", tuple(recipients[:50]), _original_message_id(parsed), clean(reporting, 300)
    )


def _recipient(fields: dict[str, str]) -> RecipientStatus | None:
    original = _typed_address(fields.get("original-recipient", ""))
    address = _typed_address(fields.get("final-recipient", "")) or original
    if not address:
        return None
    action = fields.get("action", "").strip().lower()[:20]
    diagnostic = fields.get("diagnostic-code", "") or fields.get("x-supplementary-info", "")
    diagnostic = clean(re.sub(r"^\s*smtp\s*;\s*", "", diagnostic, flags=re.IGNORECASE), 1000)
    found = _STATUS.search(fields.get("status", "")) or _STATUS.search(diagnostic)
    status = found.group(0) if found else ""
    severity = _severity(action, status, diagnostic)
    return RecipientStatus(address, action, status, diagnostic, severity, original)


def _typed_address(value: str) -> str:
    """`rfc822; a@b` (the address type is optional in practice) to `a@b`."""
    _, _, address = value.rpartition(";")
    found = addresses(address.strip() or value)
    return found[0] if found else ""


def _severity(action: str, status: str, diagnostic: str) -> Severity:
    if action in ("delivered", "relayed", "expanded"):
        return "none"
    if action == "delayed":
        return "delayed"
    if status or _SMTP_CODE.search(diagnostic):
        return failure_severity(status, diagnostic)
    return "permanent" if action == "failed" else "none"


# Permanent failures that say the address is bad (RFC 3463): 5.1.x addressing, 5.2.0 and
# 5.2.1 mailbox gone or disabled, 5.4.1 and 5.4.4 no such recipient or domain.
_ADDRESS_STATUS = re.compile(r"^5\.(?:1\.\d+|2\.[01]|4\.[14])$")
_ADDRESS_WORDS = re.compile(
    r"user unknown|unknown user|no such (?:user|recipient|mailbox)|does not exist|doesn't exist|"
    r"not found|couldn't be found|address rejected|invalid (?:recipient|mailbox|address)|"
    r"recipient (?:unknown|rejected)|mailbox (?:unavailable|disabled|not found)|"
    r"account (?:has been )?disabled|no mailbox",
    re.IGNORECASE,
)


def failure_severity(status: str, diagnostic: str) -> Severity:
    """Permanent only when the failure is about the address. A 5.x.x refusal of the
    message itself (5.7.x policy or spam, 5.6.x content, 5.3.4 or 5.2.3 size, 5.2.2
    mailbox full) says nothing final about the address: it counts as transient, so a
    recipient that keeps refusing is still suppressed after the soft-bounce limit."""
    code = _SMTP_CODE.search(diagnostic)
    permanent = status.startswith("5") if status else bool(code and code.group(1) == "5")
    if not permanent:
        return "transient"
    if _ADDRESS_STATUS.match(status) or _ADDRESS_WORDS.search(diagnostic):
        return "permanent"
    return "transient"


def _original_message_id(parsed: ParsedMessage) -> str:
    for leaf in parsed.leaves:
        if leaf.content_type in ("message/rfc822", "text/rfc822-headers", "message/global"):
            for name, value in leaf.headers:
                if name.lower() == "message-id":
                    ids = message_ids(value)
                    if ids:
                        return ids[0]
    return ""


# Plain-text bounces: (format, how the text says so).
_SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "postfix",
            r"this is the mail system at host|i'm sorry to have to inform you that your "
            r"message could\s+not",
        ),
        (
            "exchange",
            r"delivery has failed to these recipients or groups|your message to .{1,320}"
            r" couldn't be delivered|diagnostic information for administrators",
        ),
        (
            "gmail",
            r"\baddress not found\b|your message wasn't delivered to|delivery to the "
            r"following recipient failed permanently",
        ),
        ("qmail", r"this is the qmail-send program"),
        (
            "exim",
            r"this message was created automatically by mail delivery software|could not be "
            r"delivered to one or more of its recipients",
        ),
        (
            "generic",
            r"returned mail: see transcript|user unknown|no such user|mailbox "
            r"(?:unavailable|not found|does not exist)|recipient address rejected|does not exist",
        ),
    )
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned to sender|delivery status notification|delivery failure|"
    r"mail delivery failed|failure notice|returned mail|nondeliverable|non-delivery|"
    r"unzustellbar|non remis|no se puede entregar|no entregado",
    re.IGNORECASE,
)
_COPY_MARKERS = re.compile(
    r"^(?:-{2,} ?below this line is a copy of the message|-{2,} ?this is a copy of the message|"
    r"original message headers:|-{3,} ?original message ?-{3,}|-{3,} ?forwarded message ?-{3,}|"
    r"received: from )",
    re.IGNORECASE | re.MULTILINE,
)
_PERMANENT_WORDS = re.compile(
    r"permanent|address not found|user unknown|no such user|does not exist|couldn't be found|"
    r"not found|recipient address rejected|unknown user|mailbox unavailable|invalid recipient|"
    r"gave up|given up|couldn't be delivered",
    re.IGNORECASE,
)
_DELAY_WORDS = re.compile(
    r"will (?:retry|keep trying)|still trying|delayed|not yet been delivered", re.IGNORECASE
)


def looks_like_bounce_sender(parsed: ParsedMessage) -> bool:
    sender = parsed.from_address
    local = sender.split("@", 1)[0]
    display = parsed.from_display.lower()
    return (
        local in _DAEMONS
        or "mail delivery" in display
        or display in ("system administrator", "postmaster")
        or bool(_BOUNCE_SUBJECT.search(parsed.subject))
    )


def text_bounce(parsed: ParsedMessage) -> DeliveryReport | None:
    if not looks_like_bounce_sender(parsed):
        return None
    body = "\n".join(parsed.text_parts("plain")) or "\n".join(
        html_to_text(h) for h in parsed.text_parts("html")
    )
    body = body[:100_000]
    marker = _COPY_MARKERS.search(body)
    report_text = body[: marker.start()] if marker else body
    signature = next((name for name, p in _SIGNATURES if p.search(report_text)), None)
    if signature is None:
        return None
    ours = {parsed.from_address, *(a.lower() for a in addresses(parsed.header("To")))}
    recipients = []
    for address, context in _failed_addresses(report_text, signature, ours):
        status_found = _STATUS.search(context)
        status = status_found.group(0) if status_found else ""
        if status.startswith("2"):
            continue
        severity = _text_severity(status, context)
        recipients.append(
            RecipientStatus(address, "failed", status, clean(context, 1000), severity)
        )
    original = _original_message_id(parsed)
    if not original and marker:
        found = re.search(r"^message-id:\s*(<[^<>\s]+>)", body[marker.start() :], re.I | re.M)
        original = found.group(1) if found else ""
    return DeliveryReport(signature, tuple(recipients[:50]), original)


def _text_severity(status: str, context: str) -> Severity:
    if status or _SMTP_CODE.search(context):
        return failure_severity(status, context)
    if _PERMANENT_WORDS.search(context):
        return "permanent"
    if _DELAY_WORDS.search(context):
        return "delayed"
    return "transient"


_LEADS: dict[str, tuple[re.Pattern[str], ...]] = {
    "qmail": (re.compile(rf"^<({_ADDR})>:\s*$", re.M),),
    "postfix": (re.compile(rf"^<({_ADDR})>(?: \(expanded from <[^>]*>\))?:", re.M),),
    "gmail": (
        re.compile(rf"wasn't delivered to ({_ADDR})", re.I),
        re.compile(rf"failed permanently:\s*\n\s*({_ADDR})", re.I),
    ),
    "exchange": (
        re.compile(rf"^\s*(?:[^\n<(]{{0,80}}[(<])?({_ADDR})(?:[)>][^\n]{{0,80}})?\s*$", re.M),
        re.compile(rf"your message to ({_ADDR}) couldn't be delivered", re.I),
    ),
    "exim": (re.compile(rf"^\s{{2,}}<?({_ADDR})>?\s*$", re.M),),
}


def _failed_addresses(text: str, signature: str, ours: set[str]) -> list[tuple[str, str]]:
    """(address, the text that follows it) for each failed recipient the text names."""
    found: dict[str, str] = {}
    for pattern in _LEADS.get(signature, ()):
        for match in pattern.finditer(text):
            address = match.group(1).lower()
            if _usable(address, ours) and address not in found:
                found[address] = _context(text, match.end(), address)
    if not found:  # any format: the addresses the report names, if they are few
        candidates = list(
            dict.fromkeys(
                m.group(0).lower()
                for m in _ANY_ADDRESS.finditer(text)
                if _usable(m.group(0).lower(), ours)
            )
        )
        if 0 < len(candidates) <= 3:
            for address in candidates:
                found[address] = _context(text, text.lower().find(address) + len(address), address)
    return list(found.items())


def _context(text: str, start: int, address: str) -> str:
    """The report text about one address: up to the next address line, at most 600 chars."""
    tail = text[start : start + 600]
    other = re.search(rf"^\s*<?(?!{re.escape(address)})({_ADDR})>?:?\s*$", tail, re.M)
    return tail[: other.start()] if other else tail


def _usable(address: str, ours: set[str]) -> bool:
    local = address.split("@", 1)[0]
    return address not in ours and local not in _DAEMONS and "." in address.split("@", 1)[1]
