"""Emails in doubt: the worker stopped between handing a message to the mail server and
recording its answer. List them, release one (sent again with the same Message-ID) or
cancel it, and choose whether they wait for a person or are sent again after N minutes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.services.access.accounts import Role
from optout.services.enrollments import in_doubt
from optout.web.api.common import Input, PathId, read
from optout.web.api.common import transaction as tx
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/in-doubt", tags=["in-doubt emails"])


class InDoubtOut(BaseModel):
    email_id: int
    person_id: int
    to: str
    sequence_id: int
    sequence: str
    step: int = Field(description="Position of the step in its sequence.")
    subject: str
    message_id: str | None = Field(description="Reused when the email is sent again.")
    reason: str
    handed_over_at: datetime | None
    in_doubt_at: datetime | None


class InDoubtListOut(BaseModel):
    items: list[InDoubtOut]
    total: int
    resend_after_minutes: int | None = Field(
        description="Sent again automatically after this many minutes; null: held."
    )


class DecisionOut(BaseModel):
    email_id: int
    status: str = Field(description="queued (released) | cancelled")
    actor: str


class PolicyIn(Input):
    resend_after_minutes: Annotated[int | None, Field(ge=1, le=in_doubt.MAX_RESEND_MINUTES)] = (
        Field(description="Send in-doubt emails again after this many minutes; null holds them.")
    )


@router.get("", response_model=InDoubtListOut, summary="List emails in doubt")
def list_in_doubt(request: Request, principal: ApiPrincipal) -> InDoubtListOut:
    """Emails that may or may not have been delivered, oldest first (at most 500)."""
    ws = principal.workspace_id
    with read(request) as db:
        items = in_doubt.listing(db, workspace_id=ws)
        total = in_doubt.count(db, workspace_id=ws)
        minutes = in_doubt.resend_minutes(db, workspace_id=ws)
    return InDoubtListOut(
        items=[InDoubtOut(**vars(item)) for item in items],
        total=total,
        resend_after_minutes=minutes,
    )


@router.post("/{email_id}/release", response_model=DecisionOut, summary="Send it again")
def release(request: Request, principal: ApiPrincipal, email_id: PathId) -> DecisionOut:
    """Queue the email to be sent now, with the same Message-ID (a receiving server can
    drop a duplicate). It is checked for eligibility again when it is claimed."""
    with tx(request) as db:
        in_doubt.release(
            db,
            workspace_id=principal.workspace_id,
            email_id=email_id,
            actor=principal.actor,
            now=utcnow(),
        )
    return DecisionOut(email_id=email_id, status="queued", actor=principal.actor)


@router.post("/{email_id}/cancel", response_model=DecisionOut, summary="Do not send it again")
def cancel(request: Request, principal: ApiPrincipal, email_id: PathId) -> DecisionOut:
    """Cancel the email; its enrollment ends, with who and when in the history."""
    with tx(request) as db:
        in_doubt.cancel(
            db,
            workspace_id=principal.workspace_id,
            email_id=email_id,
            actor=principal.actor,
            now=utcnow(),
        )
    return DecisionOut(email_id=email_id, status="cancelled", actor=principal.actor)


@router.put("/policy", response_model=PolicyIn, summary="Hold or re-send emails in doubt")
def set_policy(request: Request, principal: ApiPrincipal, data: PolicyIn) -> PolicyIn:
    """Hold emails in doubt for a person (null, the default), or send them again after
    N minutes, accepting that a receiver may get one twice. Admin keys only."""
    principal.require(Role.ADMIN)
    with tx(request) as db:
        in_doubt.set_resend_minutes(
            db,
            workspace_id=principal.workspace_id,
            minutes=data.resend_after_minutes,
            actor=principal.actor,
            now=utcnow(),
        )
    return data
