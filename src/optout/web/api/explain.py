"""Eligibility explain (R29): may this person be enrolled in, or emailed by, this sequence
now, and why. Every check in R16 order with its outcome and evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.eligibility.model import Outcome, Purpose
from optout.errors import InvalidInput
from optout.services import eligibility
from optout.services.reads import listing
from optout.services.sequences import definitions
from optout.web.api.common import MAX_ID, EmailFilter, QueryId, read
from optout.web.api.schemas import CrmWritebackOut
from optout.web.auth import ApiPrincipal

router = APIRouter(tags=["explain"])


class OutcomeOut(BaseModel):
    check: str
    tier: int = Field(description="Its level in the precedence order (1 is highest).")
    status: Literal["pass", "block", "skip"]
    summary: str
    evidence: dict[str, Any] = Field(
        description="What the check looked at: matched conditions with actual values, the "
        "matching company, toggles, dates."
    )
    exclusion_id: int | None

    @classmethod
    def of(cls, outcome: Outcome) -> OutcomeOut:
        return cls(
            check=outcome.check,
            tier=outcome.tier,
            status=outcome.status.value,
            summary=outcome.summary,
            evidence=jsonable_encoder(dict(outcome.evidence)),
            exclusion_id=outcome.exclusion_id,
        )


class ExplanationOut(BaseModel):
    email: str
    person_id: int
    sequence_id: int
    sequence: str
    audience: str | None = Field(description="Asked about an enrollment from this audience.")
    purpose: Literal["enroll", "send"]
    allowed: bool
    primary_reason: OutcomeOut | None = Field(description="The first blocking check.")
    outcomes: list[OutcomeOut] = Field(description="Every check, in precedence order.")
    duplicates: int = Field(description="Other people with the same address.")
    automatic_enrollment: str | None = Field(
        None,
        description="For a sequence that enrolls automatically: whether it will enroll the "
        "person, or what stops it.",
    )
    company_hints: list[str] = Field(
        default_factory=list,
        description="Company rules that list this email's domain but miss the person, who "
        "belongs to no company or to another company.",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Things to know that do not decide, e.g. a domain that only looks like "
        "one an exclusion lists.",
    )
    crm_writeback: CrmWritebackOut | None = Field(
        None,
        description="The latest time the address's opt-out or complaint was sent to the "
        "CRM, and where that stands.",
    )
    at: datetime


@router.get("/explain", response_model=ExplanationOut, summary="Explain eligibility")
def explain(
    request: Request,
    principal: ApiPrincipal,
    sequence_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    email: EmailFilter = None,
    person_id: QueryId = None,
    purpose: Annotated[
        Literal["enroll", "send"],
        Query(description="enroll: may they enter now? send: may an enrolled one be emailed?"),
    ] = "enroll",
    manual: Annotated[
        bool, Query(description="Ask about a manual enrollment, not one from the audience.")
    ] = False,
) -> ExplanationOut:
    """Answers "may this person be enrolled / emailed now, and why" for a person (by
    address or id) and a sequence: opt-out, bounce, each exclusion (matched or not and by
    which condition) with its toggles, audience switch-offs, ruleset, cooldown end, company
    cap and persona, in precedence order."""
    ws, now = principal.workspace_id, utcnow()
    if (email is None) == (person_id is None):
        raise InvalidInput("name the person with email or with person_id (one of them)")
    if manual and purpose == "send":
        raise InvalidInput("manual is about enrollment; leave it out with purpose=send")
    with read(request) as db:
        if person_id is not None:
            email = listing.person(db, workspace_id=ws, person_id=person_id)["email"]
        target = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id)
        answer = eligibility.explain(
            db,
            workspace_id=ws,
            email=str(email),
            sequence=target.name,
            now=now,
            purpose=Purpose(purpose),
            via_audience=False if manual else None,
        )
    decision = answer.decision
    primary = decision.primary_reason
    return ExplanationOut(
        email=answer.person["email"],
        person_id=answer.person["id"],
        sequence_id=target.id,
        sequence=answer.sequence,
        audience=answer.audience,
        purpose=decision.purpose.value,
        allowed=decision.allowed,
        primary_reason=OutcomeOut.of(primary) if primary else None,
        outcomes=[OutcomeOut.of(o) for o in decision.outcomes],
        duplicates=answer.duplicates,
        automatic_enrollment=answer.automatic.words if answer.automatic is not None else None,
        company_hints=answer.company_hints,
        warnings=list(answer.warnings),
        crm_writeback=CrmWritebackOut.of(answer.crm_writeback) if answer.crm_writeback else None,
        at=now,
    )
