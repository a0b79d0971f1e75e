"""History (R35): everything that happened to a person, oldest first, with the opt-out
and bounce ledger of their address, the messages received about them with their evidence
as it came, and where their opt-out's trip to the CRM stands (`services.suppression.signals`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import NotFound
from optout.normalize import normalize_email
from optout.services import events
from optout.services.directory import people
from optout.services.reads import listing
from optout.services.suppression import optouts, signals
from optout.web.api.common import EmailQuery, PathId, read
from optout.web.api.schemas import CrmWritebackOut, EventOut, LedgerEntry
from optout.web.auth import ApiPrincipal

router = APIRouter(tags=["history"])


class ReportedRecipientOut(BaseModel):
    address: str
    action: str = Field(description="failed, delayed, delivered, ...")
    status: str = Field(description="Enhanced status code, e.g. 5.1.1; empty when none.")
    diagnostic: str = Field(description="The receiving server's own words.")
    severity: str = Field(description="permanent, transient, delayed or none")
    why: str = Field(description="What decided the severity, as we read the report.")


class ReceivedOut(BaseModel):
    """A message received about the person, with the evidence it carried."""

    inbound_id: int
    at: datetime
    kind: str = Field(description="bounce, complaint, unsubscribe, reply, auto_reply, ...")
    outcome: str = Field(description="What it changed: bounced, opted_out, replied, ...")
    via_unsubscribe_address: bool = Field(
        description="Sent to the unsubscribe address in our email's header."
    )
    from_address: str
    subject: str
    decided_by: str = Field(description="What in the message decided its kind.")
    words: str = Field(description="The new text of a reply (quotes and signature cut).")
    report_format: str = Field(description="A delivery or feedback report's format.")
    reader: str = Field(
        description="Which reader found a delivery report's recipients "
        "(rfc3464, flufl.bounce, text); empty when not recorded."
    )
    found_by: str = Field(description="The reader and format, in words.")
    recipients: list[ReportedRecipientOut] = Field(
        description="The report's lines about this address, as the report said them."
    )
    feedback_type: str = Field(description="A complaint's type: abuse, fraud, other, ...")
    reporting_domain: str = Field(description="Who sent the complaint.")
    reason: str
    review_decision: str | None = Field(description="The review queue's decision, if any.")

    @classmethod
    def of(cls, message: signals.Received) -> ReceivedOut:
        return cls(
            inbound_id=message.inbound_id,
            at=message.at,
            kind=message.kind,
            outcome=message.outcome,
            via_unsubscribe_address=message.via_unsubscribe_address,
            from_address=message.from_address,
            subject=message.subject,
            decided_by=message.decided_by,
            words=message.words,
            report_format=message.report_format,
            reader=message.reader,
            found_by=message.found_by,
            recipients=[ReportedRecipientOut(**vars(r)) for r in message.recipients],
            feedback_type=message.feedback_type,
            reporting_domain=message.reporting_domain,
            reason=message.reason,
            review_decision=message.review_decision,
        )


class HistoryOut(BaseModel):
    email: str
    person_ids: list[int] = Field(description="Every person with the address.")
    events: list[EventOut] = Field(description="Oldest first.")
    ledger: list[LedgerEntry] = Field(description="Opt-outs, bounces and clearings.")
    received: list[ReceivedOut] = Field(
        description="Messages received about the person (the newest 50), oldest first."
    )
    crm_writebacks: list[CrmWritebackOut] = Field(
        description="The address's opt-out as sent to the CRM, oldest first."
    )


def _history(db: Connection, *, workspace_id: int, email: str, ids: list[int]) -> HistoryOut:
    found = sorted(
        (e for i in ids for e in events.history(db, workspace_id=workspace_id, person_id=i)),
        key=lambda e: (e.at, e.id),
    )
    names = {
        "sequence": listing.names_by_id(
            db, t.sequences, workspace_id=workspace_id, ids=(e.sequence_id for e in found)
        ),
        "exclusion": listing.names_by_id(
            db, t.exclusions, workspace_id=workspace_id, ids=(e.exclusion_id for e in found)
        ),
    }
    return HistoryOut(
        email=email,
        person_ids=ids,
        events=[EventOut.of(e, names) for e in found],
        ledger=[
            LedgerEntry.model_validate(row)
            for row in optouts.ledger(db, workspace_id=workspace_id, email=email)
        ],
        received=[
            ReceivedOut.of(m)
            for m in signals.received(db, workspace_id=workspace_id, person_ids=ids, email=email)
        ],
        crm_writebacks=[
            CrmWritebackOut.of(w)
            for w in signals.crm_writebacks(db, workspace_id=workspace_id, email=email)
        ],
    )


@router.get("/history", response_model=HistoryOut, summary="History of an address")
def history_by_email(
    request: Request,
    principal: ApiPrincipal,
    email: EmailQuery,
) -> HistoryOut:
    """The events of every person with the address, oldest first, and its ledger: who or
    what blocked, unenrolled or cancelled, when, by which rule."""
    ws = principal.workspace_id
    address = normalize_email(email).address
    with read(request) as db:
        ids = people.ids_by_email(db, workspace_id=ws, email=address)
        result = _history(db, workspace_id=ws, email=address, ids=ids)
    if not ids and not result.ledger:
        raise NotFound(f"no person and no opt-out with address {address}")
    return result


@router.get("/people/{person_id}/history", response_model=HistoryOut, summary="History of a person")
def history_of_person(request: Request, principal: ApiPrincipal, person_id: PathId) -> HistoryOut:
    """The person's events, oldest first, with the ledger of their address."""
    ws = principal.workspace_id
    with read(request) as db:
        email = listing.person(db, workspace_id=ws, person_id=person_id)["email"]
        return _history(db, workspace_id=ws, email=email, ids=[person_id])
