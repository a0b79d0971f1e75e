"""Each mailbox's capacity and when its present queue will have drained (R37, R40).

The forecast is one grouped count in SQL (the queued emails of each mailbox's
enrollments, per sequence, due now and later, with the last due time) and a little
arithmetic per mailbox:

- its pace: what it may send on one sending day, its daily limit, and at most the
  longest sending hours of its sequences divided by its mean spacing (the gap plus half
  its random jitter); a mailbox with neither limit nor gap has no pace to wait for;
- its sending days: the days of the week of those sequences' schedules;
- today's room: the pace less today's sends (in its own calendar day), if today is a
  sending day;
- the days the rest needs, ceil((queued - today's room) / pace), counted on sending days
  from its own today, and never before the day its last queued email falls due.

It ignores what the sends will queue next (follow-ups, new enrollments), the hour of the
day (today's room counts in full), recipients' time zones spreading a window, emails of a
paused sequence (counted as if it sent) and pauses to come. A paused mailbox drains
nothing until it is resumed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.mail import windows
from optout.services.mailboxes.sender_mailboxes import local_day

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Pace:
    emails: int | None  # on one sending day; None: no limit and no gap
    by_gap: bool  # the gap (in the sending hours) binds, not the daily limit
    sending_minutes: int  # the longest sending hours of its sequences, a day
    days: int  # sending days of the week (bit 0 Monday)


@dataclass(frozen=True)
class Capacity:
    id: int
    address: str
    display_name: str
    time_zone: str
    daily_limit: int | None
    min_gap_seconds: int
    gap_jitter: float
    status: str
    pause_reason: str
    today: date  # its own calendar day now
    sent_today: int
    queued: int
    due_now: int
    due_later: int
    last_due_at: datetime | None
    pace: Pace
    drained_by: date | None  # None: nothing queued, or paused
    sequences: list[str] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        return self.status == "paused"

    @property
    def today_text(self) -> str:
        return f"{self.today:%a} {self.today.day} {self.today:%b}"

    @property
    def left_today(self) -> int | None:
        if self.daily_limit is None:
            return None
        return max(0, self.daily_limit - self.sent_today)

    def assumption(self) -> str:
        """The pace the forecast assumes, in words."""
        if self.pace.emails is None:
            return "no daily limit and no gap: as fast as the worker sends"
        hours, minutes = divmod(self.pace.sending_minutes, 60)
        span = f"{hours} hours" + (f" {minutes} minutes" if minutes else "")
        days = (
            "every day"
            if self.pace.days == windows.EVERY_DAY
            else f"on {windows.days_text(self.pace.days)}"
        )
        if self.pace.by_gap:
            spacing = round(self.min_gap_seconds * (1 + self.gap_jitter / 2))
            why = f"one email every {spacing} s on average, over {span} of sending"
        else:
            why = "its daily limit"
        return f"{self.pace.emails} a day ({why}), {days}, counted in {self.time_zone}"

    def forecast(self) -> str:
        if self.queued == 0:
            return "nothing queued"
        if self.paused:
            return "not while it is paused"
        assert self.drained_by is not None
        if self.drained_by == self.today:
            return "drained today"
        return f"drained by {day_text(self.drained_by)}"


@dataclass(frozen=True)
class Totals:
    mailboxes: int
    paused: int
    sent_today: int
    daily_limit: int | None  # the sum of the limits; None when one has none
    queued: int
    due_now: int
    due_later: int
    drained_by: date | None  # the latest forecast of the active mailboxes
    waiting_on_paused: int  # queued emails of paused mailboxes

    def forecast(self) -> str:
        if self.drained_by is not None:
            return f"drained by {day_text(self.drained_by)}"
        return "nothing queued" if self.queued == 0 else "not while they are paused"


@dataclass(frozen=True)
class Forecast:
    mailboxes: list[Capacity]
    totals: Totals


def day_text(day: date) -> str:
    """`Wed 9 Dec 2026`."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def _pace(
    *,
    daily_limit: int | None,
    gap_seconds: int,
    jitter: float,
    sending_minutes: int,
    days: int,
) -> Pace:
    by_gap: int | None = None
    if gap_seconds > 0:
        spacing = gap_seconds * (1 + jitter / 2)
        by_gap = max(1, int(sending_minutes * 60 // spacing))
    if daily_limit is None and by_gap is None:
        return Pace(None, False, sending_minutes, days)
    if by_gap is not None and (daily_limit is None or by_gap < daily_limit):
        return Pace(by_gap, True, sending_minutes, days)
    return Pace(daily_limit, False, sending_minutes, days)


def _nth_sending_day(start: date, n: int, days: int) -> date:
    """The n-th sending day after `start` (n >= 1), skipping days outside `days`."""
    per_week = bin(days).count("1")
    weeks, rest = divmod(n - 1, per_week)
    day = start + timedelta(weeks=weeks)
    left = rest + 1
    while left:
        day += timedelta(days=1)
        if days >> day.weekday() & 1:
            left -= 1
    return day


def drain_day(
    *,
    today: date,
    queued: int,
    sent_today: int,
    pace: Pace,
    last_due: date | None,
) -> date:
    """The mailbox's day by which `queued` emails will have gone out at `pace`."""
    if pace.emails is None:
        day = today
    else:
        room = max(0, pace.emails - sent_today) if pace.days >> today.weekday() & 1 else 0
        rest = queued - room
        day = (
            today
            if rest <= 0
            else _nth_sending_day(today, math.ceil(rest / pace.emails), pace.days)
        )
    if last_due is not None and last_due > day:
        day = (
            last_due
            if pace.days >> last_due.weekday() & 1
            else _nth_sending_day(last_due, 1, pace.days)
        )
    return day


def _queued(*, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """Per mailbox and sequence: queued emails, due now, and the last due time."""
    o, e = t.outbound_emails, t.enrollments
    return (
        sa.select(
            e.c.mailbox_id,
            e.c.sequence_id,
            sa.func.count().label("queued"),
            sa.func.sum(sa.case((o.c.due_at <= now, 1), else_=0)).label("due_now"),
            sa.func.max(o.c.due_at).label("last_due"),
        )
        .select_from(o)
        .join(e, e.c.id == o.c.enrollment_id)
        .where(o.c.workspace_id == workspace_id, o.c.status == "queued")
        .group_by(e.c.mailbox_id, e.c.sequence_id)
    )


def forecast(db: Connection, *, workspace_id: int, now: datetime) -> Forecast:
    """Every mailbox's capacity today and when its present queue will have drained."""
    b, s, sm = t.mailboxes, t.sequences, t.sequence_mailboxes
    boxes = db.execute(
        sa.select(
            b.c.id,
            b.c.address,
            b.c.display_name,
            b.c.time_zone,
            b.c.daily_limit,
            b.c.min_gap_seconds,
            b.c.gap_jitter,
            b.c.status,
            b.c.pause_reason,
            b.c.sends_day,
            b.c.sends_today,
        )
        .where(b.c.workspace_id == workspace_id)
        .order_by(b.c.address)
    ).mappings()
    schedules = {
        r.id: (r.send_days, r.send_until_minute - r.send_from_minute, r.name)
        for r in db.execute(
            sa.select(
                s.c.id, s.c.name, s.c.send_days, s.c.send_from_minute, s.c.send_until_minute
            ).where(s.c.workspace_id == workspace_id)
        )
    }
    waiting: dict[int, list[tuple[int, int, int, datetime]]] = {}
    for row in db.execute(_queued(workspace_id=workspace_id, now=now)):
        mailbox_id, sequence_id, queued, due_now, last_due = tuple(row)
        if mailbox_id is not None:
            waiting.setdefault(mailbox_id, []).append(
                (sequence_id, int(queued), int(due_now or 0), last_due)
            )
    attached: dict[int, list[int]] = {}
    for mailbox_id, sequence_id in db.execute(
        sa.select(sm.c.mailbox_id, sm.c.sequence_id).where(
            sm.c.sequence_id.in_(list(schedules) or [0])
        )
    ):
        attached.setdefault(mailbox_id, []).append(sequence_id)
    found = [
        _capacity(dict(box), waiting.get(box["id"], []), attached, schedules, now) for box in boxes
    ]
    return Forecast(found, _totals(found))


def _capacity(
    box: Mapping[str, Any],
    waiting: list[tuple[int, int, int, datetime]],
    attached: dict[int, list[int]],
    schedules: dict[int, tuple[int, int, str]],
    now: datetime,
) -> Capacity:
    today = local_day(box["time_zone"], now)
    sent = int(box["sends_today"]) if box["sends_day"] == today else 0
    # The sequences whose emails it holds, else those it is chosen for.
    used = [w[0] for w in waiting] or attached.get(int(box["id"]), [])
    known = [schedules[i] for i in used if i in schedules]
    days = 0
    minutes = 0
    for send_days, length, _ in known:
        days |= send_days
        minutes = max(minutes, length)
    if not known:
        days, minutes = windows.EVERY_DAY, windows.MINUTES_A_DAY
    pace = _pace(
        daily_limit=box["daily_limit"],
        gap_seconds=int(box["min_gap_seconds"]),
        jitter=float(box["gap_jitter"]),
        sending_minutes=minutes,
        days=days,
    )
    queued = sum(w[1] for w in waiting)
    due_now = sum(w[2] for w in waiting)
    last_due = max((w[3] for w in waiting), default=None)
    drained: date | None = None
    if queued and box["status"] != "paused":
        drained = drain_day(
            today=today,
            queued=queued,
            sent_today=sent,
            pace=pace,
            last_due=local_day(str(box["time_zone"]), last_due) if last_due else None,
        )
    return Capacity(
        id=int(box["id"]),
        address=str(box["address"]),
        display_name=str(box["display_name"]),
        time_zone=str(box["time_zone"]),
        daily_limit=box["daily_limit"],
        min_gap_seconds=int(box["min_gap_seconds"]),
        gap_jitter=float(box["gap_jitter"]),
        status=str(box["status"]),
        pause_reason=str(box["pause_reason"]),
        today=today,
        sent_today=sent,
        queued=queued,
        due_now=due_now,
        due_later=queued - due_now,
        last_due_at=last_due,
        pace=pace,
        drained_by=drained,
        sequences=sorted({schedules[i][2] for i in used if i in schedules}),
    )


def _totals(found: list[Capacity]) -> Totals:
    limits = [c.daily_limit for c in found]
    active = [c.drained_by for c in found if c.drained_by is not None]
    return Totals(
        mailboxes=len(found),
        paused=sum(c.paused for c in found),
        sent_today=sum(c.sent_today for c in found),
        daily_limit=None if None in limits else sum(x for x in limits if x is not None),
        queued=sum(c.queued for c in found),
        due_now=sum(c.due_now for c in found),
        due_later=sum(c.due_later for c in found),
        drained_by=max(active, default=None),
        waiting_on_paused=sum(c.queued for c in found if c.paused),
    )
