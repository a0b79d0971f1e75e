"""The evidence behind a person's history, as it came (R29, R35): each message received
about them (a bounce with its status code, the mail server's words and which reader found
it; a complaint; a reply asking to unsubscribe, with its words) and each time their
opt-out was sent to the CRM, with where that stands: queued, written, skipped because
the CRM field is mapped read only, or failed with the CRM's answer.

Read-only. The person's page, the history API and explain (page, API, CLI) render these
same objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from optout.db import tables as t

MAX_MESSAGES = 50  # the newest messages of a person kept on their page
WORDS = 500  # of a message's new text

# Which reader found a delivery report's recipients, as an admin reads it.
READERS = {
    "rfc3464": "standard delivery report",
    "flufl.bounce": "mail server notice, read by flufl.bounce",
    "text": "mail server notice, read from its text",
}

# A write-back row's status as the page and the API name it.
STATES = {"pending": "queued", "done": "written", "skipped": "skipped", "failed": "failed"}


@dataclass(frozen=True)
class ReportedRecipient:
    """One recipient a delivery report names, as the report said it."""

    address: str
    action: str  # failed, delayed, delivered, ...
    status: str  # enhanced status code, e.g. 5.1.1; "" when the server gave none
    diagnostic: str  # the receiving server's own words
    severity: str  # permanent, transient, delayed, none
    why: str  # our reading of it: what decided the severity


@dataclass(frozen=True)
class Received:
    """A stored inbound message matched to the person, with its evidence."""

    inbound_id: int
    at: datetime
    kind: str  # bounce, complaint, unsubscribe, reply, auto_reply, unclassified
    outcome: str  # bounced, soft_bounce, delayed, opted_out, review_needed, replied, ...
    via_unsubscribe_address: bool  # sent to our List-Unsubscribe mailto address
    from_address: str
    subject: str
    decided_by: str  # what in the message decided its kind
    words: str  # the new text of a reply (quotes and signature cut)
    report_format: str  # a delivery or feedback report's format; "" when none
    reader: str  # which reader found the report's recipients; "" when not recorded
    recipients: tuple[ReportedRecipient, ...]  # the report's lines about this address
    feedback_type: str  # a complaint's type (abuse, fraud, ...); "" for other messages
    reporting_domain: str  # who sent the complaint
    reason: str  # why nothing was done, when nothing was
    review_decision: str | None  # opted_out, dismissed, attached; None when not reviewed

    @property
    def found_by(self) -> str:
        """Which reader found a report, in words; "" for a message that is no report."""
        if self.kind == "complaint":
            return (
                f"feedback-loop report ({self.report_format.upper()})" if self.report_format else ""
            )
        shape = self.report_format
        if shape.startswith("rfc3464"):  # "rfc3464 (forwarded)": what it adds, if anything
            shape = shape.removeprefix("rfc3464").strip(" ()")
        if not self.reader:
            return READERS.get(self.report_format, self.report_format)
        found = READERS.get(self.reader, self.reader)
        return f"{found} ({shape})" if shape and shape != "mail server notice" else found


@dataclass(frozen=True)
class CrmWriteback:
    """The address's opt-out as sent to the CRM, and where that stands."""

    id: int
    queued_at: datetime
    updated_at: datetime
    field: str  # our field, `email_opt_out`
    state: str  # queued, written, skipped, failed
    attempts: int
    crm_answer: str  # the CRM's answer to the last failed try; "" otherwise

    @property
    def summary(self) -> str:
        """Where it stands, in words."""
        tries = f"{self.attempts} tr{'y' if self.attempts == 1 else 'ies'}"
        if self.state == "queued":
            waiting = "Waiting for the next CRM sync"
            return f"{waiting} (the last of {tries} failed)" if self.attempts else waiting
        if self.state == "written":
            return "Written to the CRM"
        if self.state == "skipped":
            return "Not written: the CRM's opt-out field is mapped read only"
        if self.state == "failed":
            return f"Failed after {tries}; no more retries"
        return self.state


def received(
    db: Connection,
    *,
    workspace_id: int,
    person_ids: Sequence[int],
    email: str,
    limit: int = MAX_MESSAGES,
) -> list[Received]:
    """The newest `limit` messages matched to any of `person_ids`, oldest first."""
    if not person_ids:
        return []
    m = t.inbound_messages
    rows = db.execute(
        sa.select(
            m.c.id,
            m.c.received_at,
            m.c.kind,
            m.c.outcome,
            m.c.match_by,
            m.c.from_address,
            m.c.subject,
            m.c.evidence,
            m.c.new_text,
            m.c.reason,
            m.c.review_decision,
        )
        .where(m.c.workspace_id == workspace_id, m.c.person_id.in_(list(person_ids)))
        .order_by(m.c.id.desc())
        .limit(limit)
    ).mappings()
    return [_received(row, email) for row in reversed(list(rows))]


def crm_writebacks(db: Connection, *, workspace_id: int, email: str) -> list[CrmWriteback]:
    """Every write-back of the address, oldest first."""
    w = t.crm_writebacks
    rows = db.execute(
        sa.select(w)
        .where(w.c.workspace_id == workspace_id, w.c.email == email)
        .order_by(w.c.created_at, w.c.id)
    ).mappings()
    return [
        CrmWriteback(
            id=row["id"],
            queued_at=row["created_at"],
            updated_at=row["updated_at"],
            field=row["field"],
            state=STATES.get(row["status"], row["status"]),
            attempts=row["attempts"],
            crm_answer=row["last_error"] if row["status"] in ("pending", "failed") else "",
        )
        for row in rows
    ]


def _received(row: RowMapping, email: str) -> Received:
    evidence: Mapping[str, Any] = row["evidence"] or {}
    report: Mapping[str, Any] = evidence.get("report") or {}
    complaint: Mapping[str, Any] = evidence.get("complaint") or {}
    decided: Mapping[str, Any] = next((c for c in evidence.get("checks") or [] if c.get("hit")), {})
    return Received(
        inbound_id=row["id"],
        at=row["received_at"],
        kind=row["kind"],
        outcome=row["outcome"],
        via_unsubscribe_address=row["match_by"] == "unsubscribe_token",
        from_address=row["from_address"],
        subject=row["subject"],
        decided_by=str(decided.get("evidence") or ""),
        words=(row["new_text"] or "")[:WORDS],
        report_format=str(report.get("format") or complaint.get("format") or ""),
        reader=str(report.get("reader") or ""),
        recipients=_about(report.get("recipients") or [], email),
        feedback_type=str(complaint.get("feedback_type") or ""),
        reporting_domain=str(complaint.get("reporting_domain") or ""),
        reason=row["reason"] or "",
        review_decision=row["review_decision"],
    )


def _about(report: Iterable[Mapping[str, Any]], email: str) -> tuple[ReportedRecipient, ...]:
    """The report's lines naming the address; all of them when none does (a report
    matched by the message it returns may name the address another way)."""
    lines = list(report)
    found = [
        ReportedRecipient(
            address=str(r.get("address") or ""),
            action=str(r.get("action") or ""),
            status=str(r.get("status") or ""),
            diagnostic=str(r.get("diagnostic") or ""),
            severity=str(r.get("severity") or ""),
            why=str(r.get("why") or ""),
        )
        for r in lines
    ]
    mine = [
        r
        for r, line in zip(found, lines, strict=True)
        if email.casefold() in (r.address.casefold(), str(line.get("original") or "").casefold())
    ]
    return tuple(mine or found)
