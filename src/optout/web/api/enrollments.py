"""Enrollments: list and read, enroll (always through eligibility, R17), unenroll from one
sequence (R8), and bulk unenroll by status (R10)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from optout.clock import utcnow
from optout.errors import InvalidInput, NotFound
from optout.services.directory import people
from optout.services.enrollments import enrolling
from optout.services.reads import listing
from optout.services.sequences import definitions
from optout.web.api.common import BodyId, Email, Input, Page, Paging, PathId, QueryId, page, read
from optout.web.api.common import transaction as tx
from optout.web.api.schemas import FILTER_HELP, RemovalOut
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/enrollments", tags=["enrollments"])

StatusName = Literal[
    "not_started", "in_progress", "finished", "unenrolled", "replied", "bounced", "opted_out"
]
ActiveStatus = Literal["not_started", "in_progress"]
People = Annotated[list[BodyId], Field(max_length=10_000)]
Emails = Annotated[list[Email], Field(max_length=10_000)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class EnrollmentOut(BaseModel):
    id: int
    sequence_id: int
    sequence: str
    person_id: int
    email: str
    status: str
    source: str = Field(description="manual | audience")
    audience_id: int | None
    next_position: int
    next_run_at: datetime | None
    enrolled_at: datetime
    enrolled_by: str
    ended_at: datetime | None
    end_reason: str | None


class EnrollIn(Input):
    """Name the people one way: ids, addresses (every person with one), or a filter."""

    sequence_id: BodyId
    person_ids: People | None = None
    emails: Emails | None = None
    filter: (
        Annotated[
            Annotated[str, Field(min_length=1, max_length=100_000)] | dict[str, Any],
            Field(description=FILTER_HELP + " People level: enroll everyone it matches."),
        ]
        | None
    ) = None


class EnrolledOut(BaseModel):
    requested: int
    enrolled: int
    blocked: int = Field(description="Not eligible now; explain says why.")


class UnenrollIn(Input):
    sequence_id: BodyId
    person_ids: People | None = None
    emails: Emails | None = None
    reason: Reason = "unenrolled manually"


class BulkUnenrollIn(Input):
    statuses: Annotated[list[ActiveStatus], Field(min_length=1)] = Field(
        description="Unenroll every enrollment in these statuses."
    )
    sequence_id: BodyId | None = Field(None, description="Only this sequence; else all.")
    reason: Reason = "bulk unenroll"


def _people(
    db: Connection, *, workspace_id: int, person_ids: list[int] | None, emails: list[str] | None
) -> list[int]:
    """The ids named by `person_ids` or `emails`: every one must exist in the workspace."""
    if (person_ids is None) == (emails is None):
        raise InvalidInput("name the people with person_ids or with emails (one of them)")
    if person_ids is not None:
        missing = listing.missing_people(db, workspace_id=workspace_id, ids=person_ids)
        if missing:
            raise NotFound(f"no person with id {', '.join(map(str, missing))}")
        return list(dict.fromkeys(person_ids))
    found: list[int] = []
    for email in emails or []:
        ids = people.ids_by_email(db, workspace_id=workspace_id, email=email)
        if not ids:
            people.id_by_email(db, workspace_id=workspace_id, email=email)  # raises NotFound
        found += ids
    return list(dict.fromkeys(found))


@router.get("", response_model=Page[EnrollmentOut], summary="List enrollments")
def list_enrollments(
    request: Request,
    principal: ApiPrincipal,
    paging: Paging,
    sequence_id: QueryId = None,
    person_id: QueryId = None,
    status: Annotated[list[StatusName] | None, Query(description="Repeat for several.")] = None,
) -> dict[str, Any]:
    with read(request) as db:
        found = listing.enrollments(
            db,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
            sequence_id=sequence_id,
            statuses=status or (),
            person_id=person_id,
        )
    return page(request, paging, found.rows, found.total)


@router.post("", response_model=EnrolledOut, summary="Enroll people in a sequence")
def enroll(request: Request, principal: ApiPrincipal, data: EnrollIn) -> EnrolledOut:
    """Enroll whichever of the people are eligible now. No manual path bypasses an
    exclusion, opt-out, bounce, cooldown or company cap; `blocked` counts those
    left out, and explain says why for each."""
    ws, now = principal.workspace_id, utcnow()
    given = [x for x in (data.person_ids, data.emails, data.filter) if x is not None]
    if len(given) != 1:
        raise InvalidInput("name the people one way: person_ids, emails or filter")
    with tx(request) as db:
        target = definitions.spec(db, workspace_id=ws, sequence_id=data.sequence_id)
        chosen: Any
        if data.filter is not None:
            chosen = listing.matching_people(workspace_id=ws, filter=data.filter, now=now)
        else:
            chosen = _people(db, workspace_id=ws, person_ids=data.person_ids, emails=data.emails)
        done = enrolling.enroll(
            db,
            workspace_id=ws,
            sequence_id=target.id,
            people=chosen,
            actor=principal.actor,
            now=now,
        )
    return EnrolledOut(requested=done.requested, enrolled=done.enrolled, blocked=done.blocked)


@router.post("/unenroll", response_model=RemovalOut, summary="Unenroll people from a sequence")
def unenroll(request: Request, principal: ApiPrincipal, data: UnenrollIn) -> RemovalOut:
    """End their active enrollment in this sequence only and cancel its queued emails.
    Not an opt-out; the cooldown counts from now."""
    ws = principal.workspace_id
    with tx(request) as db:
        target = definitions.spec(db, workspace_id=ws, sequence_id=data.sequence_id)
        ids = _people(db, workspace_id=ws, person_ids=data.person_ids, emails=data.emails)
        removal = enrolling.unenroll(
            db,
            workspace_id=ws,
            sequence_id=target.id,
            person_ids=ids,
            actor=principal.actor,
            now=utcnow(),
            reason=data.reason,
        )
    return RemovalOut.of(removal)


@router.post("/bulk-unenroll", response_model=RemovalOut, summary="Bulk unenroll by status")
def bulk_unenroll(request: Request, principal: ApiPrincipal, data: BulkUnenrollIn) -> RemovalOut:
    """Unenroll every enrollment in the given statuses, of one sequence or of all.

    One set-based operation in one transaction, run to the end before the answer: 100,000
    enrollments take seconds, so the totals come back in the response instead of a
    progress stream. Every ended enrollment and cancelled email gets an event."""
    ws = principal.workspace_id
    with tx(request) as db:
        sequence_id = None
        if data.sequence_id is not None:
            sequence_id = definitions.spec(db, workspace_id=ws, sequence_id=data.sequence_id).id
        removal = enrolling.bulk_unenroll(
            db,
            workspace_id=ws,
            statuses=list(dict.fromkeys(data.statuses)),
            actor=principal.actor,
            now=utcnow(),
            sequence_id=sequence_id,
            reason=data.reason,
        )
    return RemovalOut.of(removal)


@router.get("/{enrollment_id}", response_model=EnrollmentOut, summary="Get an enrollment")
def get_enrollment(
    request: Request, principal: ApiPrincipal, enrollment_id: PathId
) -> dict[str, Any]:
    with read(request) as db:
        return listing.enrollment(
            db, workspace_id=principal.workspace_id, enrollment_id=enrollment_id
        )
