"""Opt-outs: opt an address out (any member, R1, R2), list suppressed addresses, read an
address's ledger, and clear an opt-out or a spam complaint (an admin's explicit, audited
act, R33, R36). Spam complaints come in with feedback reports, never through this API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.normalize import normalize_email
from optout.services.access.accounts import Role
from optout.services.directory import people
from optout.services.reads import listing
from optout.services.suppression import optouts
from optout.web.api.common import Email, EmailFilter, EmailQuery, Input, Page, Paging, page, read
from optout.web.api.common import transaction as tx
from optout.web.api.schemas import LedgerEntry
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/optouts", tags=["opt-outs"])

Channel = Literal["manual", "unsubscribe_link", "reply", "crm", "import", "api"]


class OptOutIn(Input):
    email: Email
    reason: Annotated[str, Field(max_length=2000)] = Field(
        "", description="Why (kept in the ledger and the history)."
    )
    channel: Channel = Field("api", description="How the opt-out came in.")


class OptOutOut(BaseModel):
    email: str
    new: bool = Field(description="False when the address had opted out already.")
    people: int = Field(description="People with this address (all of them are opted out).")
    enrollments_ended: int
    emails_cancelled: int


Kind = Literal["opt_out", "bounce", "complaint"]


class ClearIn(Input):
    email: Email
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    kind: Literal["opt_out", "complaint"] = Field(
        "opt_out", description="What to clear: the opt-out, or the spam complaint."
    )


class SuppressionOut(BaseModel):
    email: str
    kind: Kind = Field(description="opt_out | bounce | complaint (a spam complaint)")
    since: datetime
    actor: str
    channel: str
    reason: str


class ClearedOut(BaseModel):
    email: str
    kind: Literal["opt_out", "complaint"]
    cleared: bool
    reason: str
    actor: str


@router.post("", response_model=OptOutOut, summary="Opt an address out")
def opt_out(request: Request, principal: ApiPrincipal, data: OptOutIn) -> OptOutOut:
    """Opt the address out of all email, for every person with it now and any who gets it
    later. Ends their active enrollments (status `opted_out`) and cancels queued
    emails in the same transaction. Any member may do it; who, when, why and the
    channel are recorded. Repeating it is harmless."""
    ws = principal.workspace_id
    with tx(request) as db:
        holders = people.ids_by_email(db, workspace_id=ws, email=data.email)
        done = optouts.opt_out(
            db,
            workspace_id=ws,
            email=data.email,
            actor=principal.actor,
            channel=data.channel,
            now=utcnow(),
            reason=data.reason,
        )
    return OptOutOut(
        email=done.email,
        new=done.new,
        people=len(holders),
        enrollments_ended=done.enrollments_ended,
        emails_cancelled=done.emails_cancelled,
    )


@router.get(
    "",
    response_model=Page[SuppressionOut],
    summary="List opted-out, bounced and complained addresses",
)
def list_suppressions(
    request: Request,
    principal: ApiPrincipal,
    paging: Paging,
    email: EmailFilter = None,
    kind: Kind | None = None,
) -> dict[str, Any]:
    """Suppressed addresses, newest first."""
    with read(request) as db:
        found = listing.suppressions(
            db,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
            email=email,
            kind=kind,
        )
    return page(request, paging, found.rows, found.total)


@router.get("/ledger", response_model=list[LedgerEntry], summary="An address's opt-out ledger")
def ledger(
    request: Request,
    principal: ApiPrincipal,
    email: EmailQuery,
) -> list[dict[str, Any]]:
    """Every opt-out, bounce, spam complaint, repeat and clearing of the address, oldest
    first."""
    with read(request) as db:
        return optouts.ledger(db, workspace_id=principal.workspace_id, email=email)


@router.post(
    "/clear", response_model=ClearedOut, summary="Clear an opt-out or a spam complaint (admin)"
)
def clear(request: Request, principal: ApiPrincipal, data: ClearIn) -> ClearedOut:
    """Lift an opt-out, or with `kind: complaint` a spam complaint: an explicit act with a
    reason, in the ledger and the history. Each is lifted on its own. No CRM record or
    import ever does this by itself. Admin keys only."""
    principal.require(Role.ADMIN)
    with tx(request) as db:
        optouts.clear_opt_out(
            db,
            workspace_id=principal.workspace_id,
            email=data.email,
            actor=principal.actor,
            reason=data.reason,
            now=utcnow(),
            kind=data.kind,
        )
    return ClearedOut(
        email=normalize_email(data.email).address,
        kind=data.kind,
        cleared=True,
        reason=data.reason,
        actor=principal.actor,
    )
