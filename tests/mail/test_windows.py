"""Sending windows in a time zone: the next opening across daylight-saving changes,
weekends and the window's edges, and waits in business days (R38)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from optout.errors import InvalidInput
from optout.mail.windows import (
    ANY_TIME,
    BUSINESS_HOURS,
    EVERY_DAY,
    Schedule,
    after_wait,
    due_time,
    is_open,
    next_opening,
    parse_clock,
    parse_days,
    zone,
    zone_name,
)

BERLIN = zone("Europe/Berlin")
NEW_YORK = zone("America/New_York")
DAILY_9_TO_5 = Schedule(EVERY_DAY, 9 * 60, 17 * 60)


def utc(*parts: int) -> datetime:
    return datetime(*parts)  # type: ignore[arg-type]  # naive UTC, as stored


def test_R38_friday_evening_in_berlin_waits_for_monday_nine_after_spring_forward() -> None:
    # Fri 27 March 2026, 17:00 CET (16:00 UTC); clocks go forward on Sunday the 29th.
    assert next_opening(utc(2026, 3, 27, 16, 0), BUSINESS_HOURS, BERLIN) == utc(2026, 3, 30, 7, 0)


def test_R38_friday_evening_in_berlin_waits_for_monday_nine_after_fall_back() -> None:
    # Fri 23 October 2026, 18:00 CEST (16:00 UTC); clocks go back on Sunday the 25th.
    assert next_opening(utc(2026, 10, 23, 16, 0), BUSINESS_HOURS, BERLIN) == utc(2026, 10, 26, 8, 0)


def test_R38_new_york_opens_at_nine_local_on_the_days_the_clocks_change() -> None:
    # Sat 7 March 2026 17:30 EST; Sunday the 8th opens at 09:00 EDT = 13:00 UTC.
    assert next_opening(utc(2026, 3, 7, 22, 30), DAILY_9_TO_5, NEW_YORK) == utc(2026, 3, 8, 13, 0)
    # Sat 31 October 2026 20:00 EDT; Sunday 1 November opens at 09:00 EST = 14:00 UTC.
    assert next_opening(utc(2026, 11, 1, 0, 0), DAILY_9_TO_5, NEW_YORK) == utc(2026, 11, 1, 14, 0)


def test_R38_the_window_includes_its_start_and_excludes_its_end() -> None:
    monday_nine = utc(2026, 11, 2, 8, 0)  # 09:00 CET
    assert next_opening(monday_nine, BUSINESS_HOURS, BERLIN) == monday_nine
    assert is_open(monday_nine, BUSINESS_HOURS, BERLIN)
    just_before = monday_nine - timedelta(seconds=1)
    assert not is_open(just_before, BUSINESS_HOURS, BERLIN)
    assert next_opening(just_before, BUSINESS_HOURS, BERLIN) == monday_nine
    last_second = utc(2026, 11, 2, 15, 59, 59)  # 16:59:59 CET
    assert next_opening(last_second, BUSINESS_HOURS, BERLIN) == last_second
    five = utc(2026, 11, 2, 16, 0)  # 17:00 CET: closed, Tuesday 09:00 next
    assert not is_open(five, BUSINESS_HOURS, BERLIN)
    assert next_opening(five, BUSINESS_HOURS, BERLIN) == utc(2026, 11, 3, 8, 0)


def test_R38_a_window_starting_in_the_skipped_hour_opens_at_the_change() -> None:
    night = Schedule(EVERY_DAY, 2 * 60 + 30, 4 * 60)
    # 29 March 2026 01:00 CET (00:00 UTC): 02:30 never comes; 03:00 CEST (01:00 UTC) does.
    assert next_opening(utc(2026, 3, 29, 0, 0), night, BERLIN) == utc(2026, 3, 29, 1, 0)


def test_R38_a_window_starting_in_the_repeated_hour_opens_at_its_first_pass() -> None:
    night = Schedule(EVERY_DAY, 90, 180)
    # 1 November 2026 01:00 EDT (05:00 UTC): 01:30 comes first at 05:30 UTC (EDT).
    assert next_opening(utc(2026, 11, 1, 5, 0), night, NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_R38_the_next_opening_is_open_and_nothing_earlier_is_across_the_changes() -> None:
    """Against a plain reading of the wall clock, every 20 minutes through both changes of
    2026 in both zones: the answer is open, and the second before it is closed unless it
    is the instant asked about."""
    schedules = (BUSINESS_HOURS, Schedule(0b1000001, 60, 23 * 60 + 30), Schedule(EVERY_DAY, 0, 90))

    def wall_open(instant: datetime, schedule: Schedule, where: object) -> bool:
        wall = instant.replace(tzinfo=zone("UTC")).astimezone(where)  # type: ignore[arg-type]
        minute = wall.hour * 60 + wall.minute
        return schedule.sends_on(wall.date()) and (
            schedule.start_minute <= minute < schedule.end_minute
        )

    for where in (BERLIN, NEW_YORK):
        for first in (utc(2026, 3, 1), utc(2026, 10, 20)):
            for step in range(0, 20 * 24 * 3):
                asked = first + timedelta(minutes=20 * step)
                for schedule in schedules:
                    opens = next_opening(asked, schedule, where)
                    assert opens >= asked
                    assert wall_open(opens, schedule, where), (asked, opens)
                    if opens > asked:
                        assert not wall_open(opens - timedelta(seconds=1), schedule, where)


def test_R38_business_day_waits_skip_the_days_the_schedule_does_not_send() -> None:
    weekdays = Schedule(business_day_waits=True)
    friday_ten = utc(2026, 3, 27, 9, 0)  # 10:00 CET
    # Two business days from Friday: Tuesday 10:00, now CEST (08:00 UTC).
    assert after_wait(friday_ten, 2 * 86400, weekdays, BERLIN) == utc(2026, 3, 31, 8, 0)
    # Counted in plain days the wait ends on Sunday, and the email waits for Monday 09:00.
    plain = Schedule()
    assert due_time(friday_ten, 2 * 86400, plain, BERLIN) == utc(2026, 3, 30, 7, 0)
    # A wait shorter than a day is not counted in days.
    assert after_wait(friday_ten, 3600, weekdays, BERLIN) == utc(2026, 3, 27, 10, 0)


def test_R38_any_time_changes_nothing() -> None:
    sunday_night = utc(2026, 11, 1, 3, 17, 5)
    assert next_opening(sunday_night, ANY_TIME, BERLIN) == sunday_night
    assert due_time(sunday_night, 86400, ANY_TIME, BERLIN) == sunday_night + timedelta(days=1)


def test_R38_schedules_and_zones_are_read_from_what_an_admin_types() -> None:
    assert parse_days("mon-fri") == 0b0011111
    assert parse_days("Mon, Wed, Fri") == 0b0010101
    assert parse_days("sat-mon") == 0b1100001
    assert parse_clock("9", what="start") == 540
    assert parse_clock("17:30", what="end") == 1050
    assert parse_clock("24:00", what="end") == 1440
    assert zone_name("europe/berlin") == "Europe/Berlin"
    assert BUSINESS_HOURS.describe() == "Mon-Fri 09:00-17:00"
    for bad in ("funday", ""):
        with pytest.raises(InvalidInput):
            parse_days(bad)
    with pytest.raises(InvalidInput):
        parse_clock("25:00", what="end")
    with pytest.raises(InvalidInput):
        zone_name("Mars/Olympus")
    with pytest.raises(InvalidInput):
        Schedule(start_minute=17 * 60, end_minute=9 * 60)
