"""Mail that comes back, posted by a mail server or gateway: the raw message in, what it
was and what it did out (R4, R5, R7, R34, R36). The same message twice changes nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from optout.clock import utcnow
from optout.db.retry import retrying
from optout.inbound import InboundOptions, InboundResult, process_message
from optout.services.access.accounts import Principal
from optout.web.api.errors import ApiError
from optout.web.auth import ApiPrincipal
from optout.web.site import site_of

router = APIRouter(tags=["inbound"])

MAX_MESSAGE_BYTES = InboundOptions().max_message_bytes
MESSAGE_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")


class InboundOut(BaseModel):
    id: int = Field(description="The stored inbound message.")
    duplicate: bool = Field(description="Seen before: nothing was done this time.")
    kind: str = Field(
        description="reply | unsubscribe | auto_reply | bounce | complaint | unclassified"
    )
    rule: str = Field(description="The classification rule that decided.")
    evidence: str
    outcome: str
    match_by: str | None
    person_id: int | None
    enrollment_id: int | None
    email_id: int | None
    review_needed: bool
    reason: str
    actions: list[str]


def _process(request: Request, principal: Principal, raw: bytes) -> InboundResult:
    """One message, one transaction; a busy database is tried again (a mailed unsubscribe
    must not fail on a lock), and the same message twice changes nothing."""
    site = site_of(request)
    options = InboundOptions(tokens=site.tokens)

    def once(db: Connection) -> InboundResult:
        return process_message(
            db,
            raw=raw,
            now=utcnow(),
            source="http",
            workspace_id=principal.workspace_id,
            options=options,
        )

    return retrying(site.engine, once)


@router.post(
    "/inbound",
    response_model=InboundOut,
    summary="Process an inbound message",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={413: {"description": "Message too large"}, 415: {"description": "Not a message"}},
)
async def inbound(request: Request, principal: ApiPrincipal) -> Any:
    """A reply ends only the enrollment it answers; an unsubscribe reply also opts
    the person out, or flags them for review; an auto-reply changes nothing; a
    hard bounce suppresses the address; a spam complaint (a feedback-loop report)
    suppresses the person, and a not-spam report is only recorded. Matching is
    limited to the key's workspace. The body is the raw message (`Content-Type: message/rfc822`)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in MESSAGE_TYPES:
        raise ApiError(415, "unsupported", "send the raw message as message/rfc822")
    if int(request.headers.get("content-length") or 0) > MAX_MESSAGE_BYTES:
        raise ApiError(413, "too_large", f"the message is over {MAX_MESSAGE_BYTES} bytes")
    raw = await request.body()
    result = await run_in_threadpool(_process, request, principal, raw)
    return InboundOut(
        id=result.id,
        duplicate=result.duplicate,
        kind=result.kind,
        rule=result.rule,
        evidence=result.evidence,
        outcome=result.outcome,
        match_by=result.match_by,
        person_id=result.person_id,
        enrollment_id=result.enrollment_id,
        email_id=result.email_id,
        review_needed=result.review_needed,
        reason=result.reason,
        actions=list(result.actions),
    )
