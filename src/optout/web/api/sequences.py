"""Sequences: create, read, pause / resume / archive (R11), enroll from the audience,
enroll automatically (R41), and the "not enrolled" view of who automatic enrollment left
out and why (R30)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from optout.clock import as_stored, utcnow
from optout.db import tables as t
from optout.mail import windows
from optout.services.enrollments import automatic_view, enrolling, refresh
from optout.services.naming import row_by_id
from optout.services.reads import listing
from optout.services.send_queue.schedule import schedule_of
from optout.services.sequences import auto_enroll, definitions, edits
from optout.web.api.common import BodyId, Input, Name, Page, Paging, PathId, page, read
from optout.web.api.common import transaction as tx
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/sequences", tags=["sequences"])

Duration = Annotated[float, Field(ge=0, le=3650, allow_inf_nan=False)]


class StepIn(Input):
    """An email (`subject`, `text`, optional `html`; Jinja templates) or a wait (`days`,
    `hours`, `minutes`). A wait first delays the first email."""

    kind: Literal["email", "wait"]
    subject: Annotated[str, Field(max_length=998)] | None = None
    text: Annotated[str, Field(max_length=100_000)] | None = None
    html: Annotated[str, Field(max_length=200_000)] | None = None
    days: Duration | None = None
    hours: Duration | None = None
    minutes: Duration | None = None


class StepOut(BaseModel):
    kind: str
    wait_seconds: int
    subject: str
    body_text: str
    body_html: str


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ClockTime = Annotated[str, Field(pattern=r"^\d{1,2}(:\d{2})?$", examples=["09:00"])]


class ScheduleIO(Input):
    """When emails go out, read in each recipient's time zone (else their mailbox's)."""

    days: Annotated[list[Day], Field(min_length=1, max_length=7)] = Field(
        description="Days of the week to send on."
    )
    start: ClockTime = Field(description="Start of the sending hours, e.g. 09:00.")
    end: ClockTime = Field(description="End of the sending hours, e.g. 17:00 (24:00: midnight).")
    business_day_waits: bool = Field(
        False, description="Waits between steps count only the sending days."
    )

    def schedule(self) -> windows.Schedule:
        return windows.schedule_from(
            list(self.days), self.start, self.end, business_day_waits=self.business_day_waits
        )

    @classmethod
    def of(cls, schedule: windows.Schedule) -> ScheduleIO:
        return cls(
            days=windows.day_names(schedule.days),  # type: ignore[arg-type]
            start=windows.clock_text(schedule.start_minute),
            end=windows.clock_text(schedule.end_minute),
            business_day_waits=schedule.business_day_waits,
        )


class SequenceIn(Input):
    name: Name
    ruleset_id: BodyId
    from_address: Annotated[str, Field(min_length=1, max_length=320)] = Field(
        description='The sender, e.g. "Sam Seller <sam@example.com>".'
    )
    reply_to: Annotated[str, Field(max_length=320)] = ""
    audience_id: BodyId | None = Field(None, description="Audience for automatic enrollment.")
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=50)]
    schedule: ScheduleIO | None = Field(
        None, description="Sending days and hours; without one the sequence sends at any hour."
    )
    enroll_automatically: bool | None = Field(
        None,
        description="Enroll the audience's members, and whoever comes to be one, by itself. "
        "Default: on when an audience is given.",
    )
    enroll_automatically_from: datetime | None = Field(
        None, description="When automatic enrollment starts (UTC unless a zone is given)."
    )
    enroll_automatically_until: datetime | None = Field(
        None, description="When automatic enrollment stops (UTC unless a zone is given)."
    )


class AutomaticEnrollmentIn(Input):
    """Turn automatic enrollment on (optionally between two moments) or off."""

    enroll_automatically: bool
    enroll_automatically_from: datetime | None = Field(
        None, description="When it starts (UTC unless a zone is given); none: at once."
    )
    enroll_automatically_until: datetime | None = Field(
        None, description="When it stops (UTC unless a zone is given); none: never."
    )


class SequenceSummary(BaseModel):
    id: int
    name: str
    status: str
    ruleset_id: int
    audience_id: int | None
    from_address: str
    reply_to: str
    created_at: datetime


class SequenceDetail(BaseModel):
    id: int
    name: str
    status: str
    ruleset: str
    audience: str | None
    from_address: str
    steps: list[StepOut]
    schedule: ScheduleIO
    queued_emails: int
    enrollments: dict[str, int] = Field(description="Enrollments by status.")
    enroll_automatically: bool = Field(
        description="Whether the audience's members are enrolled by themselves."
    )
    enroll_automatically_from: datetime | None
    enroll_automatically_until: datetime | None
    enrolled_automatically_last_day: int = Field(
        description="People automatic enrollment enrolled over the last 24 hours."
    )


class StatusIn(Input):
    status: Literal["active", "paused", "archived"] = Field(
        description="Pausing or archiving unenrolls nobody; it only stops sends."
    )


class RefreshedOut(BaseModel):
    members: int = Field(description="People in the audience now.")
    enrolled: int
    skipped: int = Field(description="Members left out; see not-enrolled for why.")


class NotEnrolledOut(BaseModel):
    email: str
    name: str
    check: str = Field(description="The first check, in precedence order, that stopped them.")
    reason: str
    exclusion: str | None
    checked_at: datetime


def _detail(db: Connection, *, workspace_id: int, sequence_id: int) -> SequenceDetail:
    name = definitions.spec(db, workspace_id=workspace_id, sequence_id=sequence_id).name
    view = definitions.overview(db, workspace_id=workspace_id, name=name)
    counts = enrolling.count_by_status(db, workspace_id=workspace_id, sequence_id=sequence_id)
    auto = automatic_view.status(
        db, workspace_id=workspace_id, sequence_id=sequence_id, now=utcnow()
    )
    return SequenceDetail(
        id=view.id,
        name=view.name,
        status=view.status,
        ruleset=view.ruleset,
        audience=view.audience,
        from_address=view.from_address,
        steps=[StepOut(**vars(step)) for step in view.steps],
        schedule=ScheduleIO.of(schedule_of(db, sequence_id=sequence_id)),
        queued_emails=view.queued_emails,
        enrollments=counts,
        enroll_automatically=auto.on,
        enroll_automatically_from=auto.starts,
        enroll_automatically_until=auto.ends,
        enrolled_automatically_last_day=auto.enrolled_last_day,
    )


@router.get("", response_model=Page[SequenceSummary], summary="List sequences")
def list_sequences(request: Request, principal: ApiPrincipal, paging: Paging) -> dict[str, Any]:
    with read(request) as db:
        found = listing.rows(
            db,
            t.sequences,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
        )
    return page(request, paging, found.rows, found.total)


@router.post("", response_model=SequenceDetail, status_code=201, summary="Create a sequence")
def create_sequence(request: Request, principal: ApiPrincipal, data: SequenceIn) -> SequenceDetail:
    """A sequence with its steps; active at once."""
    ws = principal.workspace_id
    steps = definitions.steps_from_data([step.model_dump(exclude_none=True) for step in data.steps])
    schedule = data.schedule.schedule() if data.schedule is not None else windows.ANY_TIME
    automatically = (
        data.enroll_automatically
        if data.enroll_automatically is not None
        else data.audience_id is not None
    )
    with tx(request) as db:
        now = utcnow()
        ruleset = row_by_id(db, t.rulesets, workspace_id=ws, id=data.ruleset_id, what="ruleset")
        audience = None
        if data.audience_id is not None:
            audience = row_by_id(
                db, t.audiences, workspace_id=ws, id=data.audience_id, what="audience"
            )["name"]
        sequence_id = definitions.create(
            db,
            workspace_id=ws,
            name=data.name,
            ruleset=ruleset["name"],
            now=now,
            from_address=data.from_address,
            steps=steps,
            audience=audience,
            reply_to=data.reply_to,
            schedule=schedule,
        )
        if automatically:
            _switch(
                db,
                workspace_id=ws,
                sequence=data.name,
                on=True,
                starts=data.enroll_automatically_from,
                ends=data.enroll_automatically_until,
                actor=principal.actor,
            )
        return _detail(db, workspace_id=ws, sequence_id=sequence_id)


def _switch(
    db: Connection,
    *,
    workspace_id: int,
    sequence: str,
    on: bool,
    starts: datetime | None,
    ends: datetime | None,
    actor: str,
) -> None:
    auto_enroll.switch(
        db,
        workspace_id=workspace_id,
        sequence=sequence,
        on=on,
        actor=actor,
        now=utcnow(),
        starts=as_stored(starts) if starts is not None and on else None,
        ends=as_stored(ends) if ends is not None and on else None,
    )


@router.get("/{sequence_id}", response_model=SequenceDetail, summary="Get a sequence")
def get_sequence(request: Request, principal: ApiPrincipal, sequence_id: PathId) -> SequenceDetail:
    """Steps, settings, enrollments by status and queued emails."""
    with read(request) as db:
        return _detail(db, workspace_id=principal.workspace_id, sequence_id=sequence_id)


@router.post(
    "/{sequence_id}/status", response_model=SequenceDetail, summary="Pause, resume or archive"
)
def set_status(
    request: Request, principal: ApiPrincipal, sequence_id: PathId, data: StatusIn
) -> SequenceDetail:
    """Sends from the sequence stop or restart; nobody is unenrolled. An archived
    sequence cannot be resumed."""
    ws = principal.workspace_id
    with tx(request) as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        definitions.set_status(
            db, workspace_id=ws, name=name, status=data.status, actor=principal.actor, now=utcnow()
        )
        return _detail(db, workspace_id=ws, sequence_id=sequence_id)


@router.put("/{sequence_id}/schedule", response_model=SequenceDetail, summary="Set the schedule")
def set_schedule(
    request: Request, principal: ApiPrincipal, sequence_id: PathId, data: ScheduleIO
) -> SequenceDetail:
    """New sending days and hours. Emails already queued that the new hours close wait
    for their next opening."""
    ws = principal.workspace_id
    with tx(request) as db:
        edits.update_settings(
            db,
            workspace_id=ws,
            sequence_id=sequence_id,
            changes={"schedule": data.schedule()},
            actor=principal.actor,
            now=utcnow(),
        )
        return _detail(db, workspace_id=ws, sequence_id=sequence_id)


@router.put(
    "/{sequence_id}/automatic-enrollment",
    response_model=SequenceDetail,
    summary="Enroll automatically, or stop",
)
def set_automatic_enrollment(
    request: Request, principal: ApiPrincipal, sequence_id: PathId, data: AutomaticEnrollmentIn
) -> SequenceDetail:
    """On: the audience's members never in the sequence, then everyone who comes to match,
    are enrolled by the next worker pass if every check lets them in (between the two
    moments when given). Off: nobody more is enrolled by itself; nobody is unenrolled."""
    ws = principal.workspace_id
    with tx(request) as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        _switch(
            db,
            workspace_id=ws,
            sequence=name,
            on=data.enroll_automatically,
            starts=data.enroll_automatically_from,
            ends=data.enroll_automatically_until,
            actor=principal.actor,
        )
        return _detail(db, workspace_id=ws, sequence_id=sequence_id)


@router.post(
    "/{sequence_id}/refresh", response_model=RefreshedOut, summary="Enroll from the audience"
)
def refresh_sequence(
    request: Request, principal: ApiPrincipal, sequence_id: PathId
) -> RefreshedOut:
    """Enroll every eligible member of the sequence's audience in one pass, and keep who
    was left out with the reason (see not-enrolled)."""
    ws = principal.workspace_id
    with tx(request) as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        done = refresh.refresh(
            db, workspace_id=ws, sequence=name, actor=principal.actor, now=utcnow()
        )
    return RefreshedOut(members=done.members, enrolled=done.enrolled, skipped=done.skipped)


@router.get(
    "/{sequence_id}/not-enrolled",
    response_model=Page[NotEnrolledOut],
    summary="Who automatic enrollment left out, and why",
)
def not_enrolled(
    request: Request, principal: ApiPrincipal, sequence_id: PathId, paging: Paging
) -> dict[str, Any]:
    """Every member of the audience the last refresh did not enroll, each with the first
    check that stopped them and the exclusion by name."""
    ws = principal.workspace_id
    with read(request) as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        rows = refresh.not_enrolled(
            db, workspace_id=ws, sequence=name, limit=paging.limit, offset=paging.offset
        )
    items = [NotEnrolledOut(**vars(row)) for row in rows]
    return page(request, paging, items, None)
