"""Each mailbox's capacity and when its present queue will have drained (R37, R40), the
forecast of the capacity page. Any key may read it."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.mail import windows
from optout.sending import drain
from optout.web.api.common import read
from optout.web.auth import ApiPrincipal

router = APIRouter(tags=["mailboxes"])


class CapacityOut(BaseModel):
    id: int
    address: str
    time_zone: str
    status: str
    pause_reason: str
    today: date = Field(description="The mailbox's own calendar day now")
    sent_today: int
    daily_limit: int | None = Field(description="null: no daily limit")
    left_today: int | None = Field(description="null: no daily limit")
    queued: int
    due_now: int
    due_later: int
    last_due_at: datetime | None
    pace_per_day: int | None = Field(
        description="Emails a sending day at these limits; null: no limit and no gap"
    )
    pace_set_by: str = Field(description='"daily limit", "gap" or "none"')
    sending_days: list[str] = Field(description="Its sequences' sending days")
    drained_by: date | None = Field(
        description="The mailbox's day its present queue will have gone out; null when "
        "nothing is queued or it is paused"
    )
    forecast: str
    assuming: str

    @classmethod
    def of(cls, c: drain.Capacity) -> CapacityOut:
        return cls(
            id=c.id,
            address=c.address,
            time_zone=c.time_zone,
            status=c.status,
            pause_reason=c.pause_reason,
            today=c.today,
            sent_today=c.sent_today,
            daily_limit=c.daily_limit,
            left_today=c.left_today,
            queued=c.queued,
            due_now=c.due_now,
            due_later=c.due_later,
            last_due_at=c.last_due_at,
            pace_per_day=c.pace.emails,
            pace_set_by=(
                "none" if c.pace.emails is None else "gap" if c.pace.by_gap else "daily limit"
            ),
            sending_days=windows.day_names(c.pace.days),
            drained_by=c.drained_by,
            forecast=c.forecast(),
            assuming=c.assumption(),
        )


class TotalsOut(BaseModel):
    mailboxes: int
    paused: int
    sent_today: int
    daily_limit: int | None = Field(description="The limits' sum; null when one has none")
    queued: int
    due_now: int
    due_later: int
    waiting_on_paused: int
    drained_by: date | None = Field(description="The latest day of the sending mailboxes")


class CapacityListOut(BaseModel):
    items: list[CapacityOut]
    totals: TotalsOut


@router.get(
    "/mailboxes/capacity",
    response_model=CapacityListOut,
    summary="Each mailbox's sends today, queue and the day it will have drained",
)
def mailbox_capacity(request: Request, principal: ApiPrincipal) -> CapacityListOut:
    """The forecast assumes each mailbox sends at its pace (its daily limit, or fewer when
    its gap over its sequences' longest sending hours allows fewer) on its sequences'
    sending days, counted in its own time zone, from what is left of today; it ignores
    follow-ups the sends will queue and new enrollments."""
    with read(request) as db:
        found = drain.forecast(db, workspace_id=principal.workspace_id, now=utcnow())
    t = found.totals
    return CapacityListOut(
        items=[CapacityOut.of(c) for c in found.mailboxes],
        totals=TotalsOut(
            mailboxes=t.mailboxes,
            paused=t.paused,
            sent_today=t.sent_today,
            daily_limit=t.daily_limit,
            queued=t.queued,
            due_now=t.due_now,
            due_later=t.due_later,
            waiting_on_paused=t.waiting_on_paused,
            drained_by=t.drained_by,
        ),
    )
