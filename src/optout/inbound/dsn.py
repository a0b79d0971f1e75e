"""Delivery reports (R7): which recipients a returned message says failed, and how.

Three readers, tried in order, each used only when the one before it finds no
failure: RFC 3464 reports (`multipart/report; report-type=delivery-status`, also
nested in a forwarded message); GNU Mailman's flufl.bounce, which knows the
non-standard notices of dozens of servers and providers (Postfix, Exim, qmail,
Sendmail, Exchange, Yahoo, GroupWise, Lotus/Domino...); and our own reading of the
plain-text notices, for the rest. Each recipient's status code and diagnostic are
read from the report's text about it, so explain can show them, and its severity
is our policy (`bounce_policy`), whatever the reader thought. Pure: a parsed
message in, a `DeliveryReport` or None out.
"""

from __future__ import annotations

import itertools
import re

from optout.inbound.bounce_policy import STATUS, Severity, judge
from optout.inbound.notices import library_report, original_message_id, text_bounce
from optout.inbound.parse import Headers, ParsedMessage, addresses, clean, status_blocks
from optout.inbound.reports import DeliveryReport, RecipientStatus

__all__ = ["DeliveryReport", "RecipientStatus", "delivery_report", "rfc3464_report"]


def delivery_report(parsed: ParsedMessage) -> DeliveryReport | None:
    """What the first reader that finds a failure or a delay says; failing that, the
    first report that names anyone (a success notice), else None."""
    found: list[DeliveryReport] = []
    for reader in (rfc3464_report, library_report, text_bounce):
        report = reader(parsed)
        if report is not None and report.decided:
            return report
        found += [report] if report is not None else []
    return next((r for r in found if r.recipients), found[0] if found else None)


_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_FAILED = ("failed", "failure", "error")  # RFC 3464 says `failed`; servers write the rest


def rfc3464_report(parsed: ParsedMessage) -> DeliveryReport | None:
    blocks = [
        b for leaf in parsed.leaves if leaf.content_type in _STATUS_TYPES for b in leaf.blocks
    ]
    forwarded = not blocks and parsed.message is not None
    if forwarded:  # a report someone forwarded: the parts of the enclosed message
        assert parsed.message is not None
        parts = itertools.islice(parsed.message.walk(), 200)
        blocks = [
            b for p in parts if p.get_content_type() in _STATUS_TYPES for b in status_blocks(p)
        ]
    if not blocks:
        return None
    per_message: Headers = ()
    recipients: list[RecipientStatus] = []
    for block in blocks:
        fields = {name.lower(): value for name, value in block}
        if "final-recipient" not in fields and "original-recipient" not in fields:
            per_message = per_message or block
            continue
        recipient = _recipient(fields)
        if recipient is not None:
            recipients.append(recipient)
    reporting = next((v for k, v in per_message if k.lower() == "reporting-mta"), "")
    return DeliveryReport(
        "rfc3464 (forwarded)" if forwarded else "rfc3464",
        tuple(recipients[:50]),
        original_message_id(parsed),
        clean(reporting, 300),
    )


def _recipient(fields: dict[str, str]) -> RecipientStatus | None:
    """One per-recipient paragraph; its status and wording are read from all of it."""
    original = _typed_address(fields.get("original-recipient", ""))
    address = _typed_address(fields.get("final-recipient", "")) or original
    if not address:
        return None
    action = fields.get("action", "").strip().lower()[:20]
    diagnostic = fields.get("diagnostic-code", "") or fields.get("x-supplementary-info", "")
    diagnostic = clean(re.sub(r"^\s*smtp\s*;\s*", "", diagnostic, flags=re.IGNORECASE), 1000)
    paragraph = " ".join(
        value
        for name, value in fields.items()
        if name not in ("final-recipient", "original-recipient")
    )
    found = STATUS.search(fields.get("status", "")) or STATUS.search(paragraph)
    status = found.group(0) if found else ""
    severity: Severity
    if action in ("delivered", "relayed", "expanded"):
        severity, basis = "none", f"action {action}"
    elif action == "delayed" or (status.startswith("4") and action not in _FAILED):
        severity, basis = "delayed", "the server keeps trying (action delayed)"
    elif action in _FAILED or status.startswith("5"):
        verdict = judge(status, paragraph, fallback="permanent")
        severity, basis = verdict.severity, verdict.basis
    else:
        severity, basis = "none", f"action {action or 'missing'} and no failure status"
    return RecipientStatus(
        address, action, status, diagnostic or clean(paragraph, 1000), severity, original, basis
    )


def _typed_address(value: str) -> str:
    """`rfc822; a@b` (the address type is optional in practice) to `a@b`."""
    _, _, address = value.rpartition(";")
    found = addresses(address.strip() or value)
    return found[0] if found else ""
