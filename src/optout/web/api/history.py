"""History (R35): everything that happened to a person, oldest first, with the opt-out
and bounce ledger of their address."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import NotFound
from optout.normalize import normalize_email
from optout.services import events, listing, optouts, people
from optout.web.api.common import EmailQuery, PathId
from optout.web.api.common import transaction as tx
from optout.web.api.schemas import EventOut, LedgerEntry
from optout.web.auth import ApiPrincipal

router = APIRouter(tags=["history"])


class HistoryOut(BaseModel):
    email: str
    person_ids: list[int] = Field(description="Every person with the address.")
    events: list[EventOut] = Field(description="Oldest first.")
    ledger: list[LedgerEntry] = Field(description="Opt-outs, bounces and clearings.")


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
    with tx(request) as db:
        ids = people.ids_by_email(db, workspace_id=ws, email=address)
        result = _history(db, workspace_id=ws, email=address, ids=ids)
    if not ids and not result.ledger:
        raise NotFound(f"no person and no opt-out with address {address}")
    return result


@router.get("/people/{person_id}/history", response_model=HistoryOut, summary="History of a person")
def history_of_person(request: Request, principal: ApiPrincipal, person_id: PathId) -> HistoryOut:
    """The person's events, oldest first, with the ledger of their address."""
    ws = principal.workspace_id
    with tx(request) as db:
        email = listing.person(db, workspace_id=ws, person_id=person_id)["email"]
        return _history(db, workspace_id=ws, email=email, ids=[person_id])
