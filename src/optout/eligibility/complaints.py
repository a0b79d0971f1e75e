"""How a spam complaint's report is kept in its suppression's `reason` (R36), and read back.

The reason reads as a sentence and parses back exactly: `<feedback type> report`, then
` from <reporting domain>` when the report named one, then `: <note>` when the caller gave
words of its own, for example `abuse report from mail.example.net: ARF from the FBL`.
The feedback type is an RFC 5965 token (lower case); the domain has no spaces or colons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"[a-z0-9][a-z0-9-]*")
_REASON = re.compile(
    r"(?P<type>[a-z0-9][a-z0-9-]*) report(?: from (?P<domain>[^\s:]+))?(?:: (?P<note>.*))?",
    re.DOTALL,
)


@dataclass(frozen=True)
class ComplaintReport:
    feedback_type: str
    reporting_domain: str  # "" when the report named none
    note: str = ""


def is_feedback_type(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def complaint_reason(report: ComplaintReport) -> str:
    """The suppression reason that holds `report`."""
    text = f"{report.feedback_type} report"
    if report.reporting_domain:
        text += f" from {report.reporting_domain}"
    if report.note:
        text += f": {report.note}"
    return text


def read_complaint_reason(reason: str) -> ComplaintReport:
    """The report held by a complaint's reason; a reason in another form (written by hand)
    is kept whole as the note, with the feedback type `abuse`, RFC 5965's default kind."""
    found = _REASON.fullmatch(reason)
    if found is None:
        return ComplaintReport("abuse", "", reason)
    return ComplaintReport(found["type"], found["domain"] or "", found["note"] or "")
