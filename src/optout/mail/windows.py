"""Sending windows: the days and hours a sequence sends in, read in a time zone (R38).

Pure arithmetic over instants, which optout stores as naive UTC. Every conversion is the
standard library's `zoneinfo` (the IANA data): daylight-saving changes are never written
by hand here. A window opens at the first instant whose wall-clock time in the zone has
reached its start (on a spring-forward day a start inside the skipped hour opens at the
change) and closes at the first instant that reaches its end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from optout.errors import InvalidInput

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EVERY_DAY = 0b1111111
WEEKDAYS = 0b0011111
MINUTES_A_DAY = 1440
DAY_SECONDS = 86400


@dataclass(frozen=True)
class Schedule:
    """Days of the week (bit 0 Monday ... bit 6 Sunday), minutes of the day from
    (inclusive) until (exclusive), and whether waits count only sending days."""

    days: int = WEEKDAYS
    start_minute: int = 9 * 60
    end_minute: int = 17 * 60
    business_day_waits: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.days <= EVERY_DAY:
            raise InvalidInput("a schedule needs at least one day of the week to send on")
        if not 0 <= self.start_minute < self.end_minute <= MINUTES_A_DAY:
            raise InvalidInput(
                "a schedule's sending hours must start before they end, within one day "
                "(for example 09:00 to 17:00)"
            )

    @property
    def any_time(self) -> bool:
        return (
            self.days == EVERY_DAY
            and self.start_minute == 0
            and self.end_minute == MINUTES_A_DAY
            and not self.business_day_waits
        )

    def sends_on(self, day: date) -> bool:
        return bool(self.days >> day.weekday() & 1)

    def describe(self) -> str:
        """`Mon-Fri 09:00-17:00`, `every day at any hour`, `Mon, Wed 08:30-12:00`."""
        if self.days == EVERY_DAY and self.start_minute == 0 and self.end_minute == 1440:
            text = "every day at any hour"
        else:
            text = f"{days_text(self.days)} {clock_text(self.start_minute)}-"
            text += clock_text(self.end_minute)
        if self.business_day_waits:
            text += ", waits count sending days only"
        return text


ANY_TIME = Schedule(EVERY_DAY, 0, MINUTES_A_DAY, False)
BUSINESS_HOURS = Schedule()


def days_text(days: int) -> str:
    chosen = [i for i in range(7) if days >> i & 1]
    if len(chosen) > 2 and chosen == list(range(chosen[0], chosen[-1] + 1)):
        return f"{DAY_NAMES[chosen[0]]}-{DAY_NAMES[chosen[-1]]}"
    return ", ".join(DAY_NAMES[i] for i in chosen)


def clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_days(text: str) -> int:
    """`mon-fri`, `mon,wed,fri`, `sat-sun`, `every day`: the day bits."""
    cleaned = text.strip().lower()
    if cleaned in ("every day", "everyday", "all", "daily"):
        return EVERY_DAY
    names = [name.lower() for name in DAY_NAMES]
    bits = 0
    for part in re.split(r"[,\s]+", cleaned):
        if not part:
            continue
        ends = [end.strip()[:3] for end in re.split(r"-", part)]
        if any(end not in names for end in ends) or len(ends) > 2:
            raise InvalidInput(
                f"not days of the week: {part!r} (write for example mon-fri or mon,wed,fri)"
            )
        first, last = names.index(ends[0]), names.index(ends[-1])
        span = range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
        for i in span:
            bits |= 1 << i
    if not bits:
        raise InvalidInput("a schedule needs at least one day of the week to send on")
    return bits


_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")


def parse_clock(text: str, *, what: str) -> int:
    """`09:00`, `9`, `17:30`, `24:00`: the minute of the day."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise InvalidInput(f"the {what} must be a time of day like 09:00, not {text!r}")
    minute = int(match[1]) * 60 + int(match[2] or 0)
    if int(match[2] or 0) >= 60 or minute > MINUTES_A_DAY:
        raise InvalidInput(f"the {what} must be a time of day like 09:00, not {text!r}")
    return minute


# Zones ------------------------------------------------------------------------------------


@cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def zone_name(text: str) -> str:
    """The IANA name of a zone written in any case (`europe/berlin` -> `Europe/Berlin`);
    InvalidInput for a name the time zone database does not know."""
    cleaned = text.strip()
    name = _zone_names().get(cleaned.lower())
    if name is None:
        raise InvalidInput(
            f"not a time zone name: {cleaned!r} (use a name like Europe/Berlin or America/New_York)"
        )
    return name


@cache
def zone(name: str | None) -> ZoneInfo:
    """The zone of that name; UTC for none or for a name the database no longer knows."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# Instants ---------------------------------------------------------------------------------


def _utc(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _stored(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def _wall(instant: datetime, where: ZoneInfo) -> datetime:
    return _utc(instant).astimezone(where).replace(tzinfo=None)


def first_instant_at(wall: datetime, where: ZoneInfo) -> datetime:
    """The first instant (aware, UTC) whose wall-clock time in `where` is `wall` or later:
    the earlier of two in a repeated hour, the change itself for a skipped one."""
    early = wall.replace(tzinfo=where, fold=0).astimezone(UTC)
    if _wall(early, where) == wall:
        return early
    # `wall` falls in a skipped hour: fold=1 reads it with the offset after the change,
    # an instant before it; the change lies between the two, found to the second.
    low = int(wall.replace(tzinfo=where, fold=1).timestamp())
    high = int(early.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), where) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _bounds(day: date, schedule: Schedule, where: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time()) + timedelta(minutes=schedule.start_minute)
    end = datetime.combine(day, time()) + timedelta(minutes=schedule.end_minute)
    return first_instant_at(start, where), first_instant_at(end, where)


def is_open(instant: datetime, schedule: Schedule, where: ZoneInfo) -> bool:
    """Whether `instant` (naive UTC or aware) lies inside the window."""
    if schedule.any_time:
        return True
    return next_opening(instant, schedule, where) == _stored(_utc(instant))


def next_opening(instant: datetime, schedule: Schedule, where: ZoneInfo) -> datetime:
    """`instant` itself when the window is open then, else the next moment it opens;
    naive UTC, as stored."""
    moment = _utc(instant)
    if schedule.any_time:
        return _stored(moment)
    today = _wall(moment, where).date()
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if not schedule.sends_on(day):
            continue
        opens, closes = _bounds(day, schedule, where)
        if moment < closes:
            return _stored(max(moment, opens))
    raise AssertionError("a schedule with a sending day opens within a week")  # pragma: no cover


def after_wait(
    instant: datetime, wait_seconds: int, schedule: Schedule, where: ZoneInfo
) -> datetime:
    """The moment a wait of `wait_seconds` after `instant` ends, naive UTC. With business
    day waits, each whole day of the wait is a sending day of the schedule (a wait of two
    days from a Friday ends on Tuesday at the same wall-clock time); what is left of a
    day is added as it is."""
    moment = _utc(instant)
    if not schedule.business_day_waits or wait_seconds < DAY_SECONDS:
        return _stored(moment + timedelta(seconds=wait_seconds))
    days, rest = divmod(wait_seconds, DAY_SECONDS)
    wall = _wall(moment, where)
    day = wall.date()
    while days:
        day += timedelta(days=1)
        if schedule.sends_on(day):
            days -= 1
    landed = first_instant_at(datetime.combine(day, wall.time()), where)
    return _stored(landed + timedelta(seconds=rest))


def due_time(instant: datetime, wait_seconds: int, schedule: Schedule, where: ZoneInfo) -> datetime:
    """When an email queued at `instant` after a wait is due: the wait's end, moved to the
    next opening of the window."""
    return next_opening(after_wait(instant, wait_seconds, schedule, where), schedule, where)


def closes_after(instant: datetime, schedule: Schedule, where: ZoneInfo) -> datetime:
    """For an instant inside the window, the moment that window closes (naive UTC)."""
    moment = _utc(instant)
    today = _wall(moment, where).date()
    for offset in (-1, 0, 1):
        opens, closes = _bounds(today + timedelta(days=offset), schedule, where)
        if opens <= moment < closes:
            return _stored(closes)
    raise InvalidInput("the window is closed at that moment")


def closed_spans(
    low: datetime, high: datetime, schedule: Schedule, where: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """The closed stretches met from `low` to `high` (naive UTC), each as (from, the
    opening that ends it); the first starts at `low` when the window is closed then."""
    spans: list[tuple[datetime, datetime]] = []
    if schedule.any_time:
        return spans
    cursor = low
    while cursor <= high:
        opens = next_opening(cursor, schedule, where)
        if opens > cursor:
            spans.append((cursor, opens))
        cursor = closes_after(opens, schedule, where)
    return spans


def schedule_from(
    days: str | list[str], start: str, end: str, *, business_day_waits: bool = False
) -> Schedule:
    """A schedule from what an admin writes: days (`mon-fri`, or a list of day names),
    the start and end as times of day (`09:00`, `17:00`)."""
    text = days if isinstance(days, str) else ",".join(days)
    return Schedule(
        parse_days(text),
        parse_clock(start, what="start of the sending hours"),
        parse_clock(end, what="end of the sending hours"),
        business_day_waits,
    )


def day_names(days: int) -> list[str]:
    """The day bits as lower-case names, Monday first: `["mon", "tue"]`."""
    return [DAY_NAMES[i].lower() for i in range(7) if days >> i & 1]
