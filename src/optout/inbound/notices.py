"""Bounce notices that are no RFC 3464 report (R7): the plain-text and odd-MIME
notices of Postfix, Exim, qmail, Sendmail, Exchange, Yahoo, GroupWise, Lotus/Domino
and the rest. GNU Mailman's flufl.bounce finds their failed recipients; where it
finds none, our own reading of the common servers' wording does. Either way each
address's status code and diagnostic come from the notice's text about it, and its
severity is our policy (`bounce_policy`). Only a message that looks like a bounce
(a mailer-daemon sender, a bounce subject, a report, an empty return path) is read.
Pure: a parsed message in, a `DeliveryReport` or None out.
"""

from __future__ import annotations

import re

from flufl.bounce import all_failures

from optout.inbound.bounce_policy import STATUS, Severity, judge
from optout.inbound.newtext import html_to_text
from optout.inbound.parse import ParsedMessage, addresses, message_ids
from optout.inbound.reports import DeliveryReport, RecipientStatus

_ADDR = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?"
_ANY_ADDRESS = re.compile(_ADDR)
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "maildelivery", "mdaemon")
_MAX_TEXT = 100_000
_MAX_RECIPIENTS = 50


# Our reading of plain-text notices: (format, how the text says so).
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
    r"mail delivery (?:failed|warning|problem)|failure notice|returned mail|nondeliverable|"
    r"non-delivery|could not be delivered|delivery (?:has )?failed|user unknown|"
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


def looks_like_bounce(parsed: ParsedMessage) -> bool:
    """A mail system's notice, not a person's message: who sent it, its subject, or how
    it is built (a report, a failed-recipients header, an empty return path)."""
    local = parsed.from_address.split("@", 1)[0]
    display = parsed.from_display.lower()
    return (
        local in _DAEMONS
        or "mail delivery" in display
        or "mailer" in display
        or display in ("system administrator", "postmaster", "mail administrator")
        or bool(_BOUNCE_SUBJECT.search(parsed.subject))
        or parsed.content_type == "multipart/report"
        or parsed.has("X-Failed-Recipients")
        or _return_path_local(parsed) in ("", *_DAEMONS)
    )


def _return_path_local(parsed: ParsedMessage) -> str | None:
    """The local part of the Return-Path ("" for the null path `<>`), None without one."""
    value = parsed.header("Return-Path").strip()
    if not value:
        return None
    return value.strip("<> ").split("@", 1)[0].lower()


def notice_text(parsed: ParsedMessage) -> tuple[str, str]:
    """The notice's own words, and the returned copy of our message after them."""
    body = "\n".join(parsed.text_parts("plain")) or "\n".join(
        html_to_text(h) for h in parsed.text_parts("html")
    )
    body = body[:_MAX_TEXT]
    marker = _COPY_MARKERS.search(body)
    return (body[: marker.start()], body[marker.start() :]) if marker else (body, "")


def original_message_id(parsed: ParsedMessage) -> str:
    """The Message-ID of the returned message, from its attached copy or headers."""
    for leaf in parsed.leaves:
        if leaf.content_type in ("message/rfc822", "text/rfc822-headers", "message/global"):
            for name, value in leaf.headers:
                if name.lower() == "message-id":
                    ids = message_ids(value)
                    if ids:
                        return ids[0]
    _, copy = notice_text(parsed)
    found = re.search(r"^message-id:\s*(<[^<>\s]+>)", copy, re.I | re.M)
    return found.group(1) if found else ""


def library_report(parsed: ParsedMessage) -> DeliveryReport | None:
    """The failed recipients flufl.bounce finds, judged by our policy."""
    if parsed.message is None or not looks_like_bounce(parsed):
        return None
    try:
        temporary, permanent = all_failures(parsed.message)
    except Exception:  # a detector that trips on a hostile message finds nothing
        return None
    if not temporary and not permanent:
        return None
    text, copy = notice_text(parsed)
    recipients: list[RecipientStatus] = []
    for raw, warning in [*((a, False) for a in permanent), *((a, True) for a in temporary)]:
        address = raw.decode("utf-8", "replace").strip("<> ")
        if warning and address.lower() in {r.address.lower() for r in recipients}:
            continue
        context = _about(text, address) or _about(copy, address)
        status_found = STATUS.search(context)
        status = status_found.group(0) if status_found else ""
        verdict = judge(status, context, fallback="delayed" if warning else "permanent")
        severity: Severity = verdict.severity
        if warning and severity != "sending_side":  # a warning: the server keeps trying
            severity = "delayed"
        basis = f"{verdict.basis}; flufl.bounce read a {'delay' if warning else 'failure'}"
        recipients.append(
            RecipientStatus(address, "failed", status, context[:1000], severity, basis=basis[:300])
        )
    return DeliveryReport(
        "mail server notice",
        tuple(recipients[:_MAX_RECIPIENTS]),
        original_message_id(parsed),
        reader="flufl.bounce",
    )


def _about(text: str, address: str) -> str:
    """The notice's words about one address: its line, and what follows up to the next
    address line (at most 600 characters); "" when the text does not name it."""
    at = text.lower().find(address.lower())
    if at < 0:
        return ""
    line_start = text.rfind("\n", 0, at) + 1
    return (text[line_start:at] + address + _context(text, at + len(address), address)).strip()


def text_bounce(parsed: ParsedMessage) -> DeliveryReport | None:
    """Our reading of the common servers' wording, for notices the library misses."""
    if not looks_like_bounce(parsed):
        return None
    report_text, _ = notice_text(parsed)
    signature = next((name for name, p in _SIGNATURES if p.search(report_text)), None)
    if signature is None:
        return None
    ours = {parsed.from_address, *(a.lower() for a in addresses(parsed.header("To")))}
    recipients: list[RecipientStatus] = []
    for address, context in _failed_addresses(report_text, signature, ours):
        status_found = STATUS.search(context)
        status = status_found.group(0) if status_found else ""
        if status.startswith("2"):
            continue
        fallback: Severity = "permanent" if _PERMANENT_WORDS.search(context) else "transient"
        verdict = judge(status, context, fallback=fallback)
        recipients.append(
            RecipientStatus(
                address, "failed", status, context[:1000], verdict.severity, basis=verdict.basis
            )
        )
    return DeliveryReport(
        signature, tuple(recipients[:_MAX_RECIPIENTS]), original_message_id(parsed), reader="text"
    )


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
