"""When each mailbox's present queue will have drained at its limits (R37, R40): its
daily limit counted in its own day, its gap over its sequences' sending hours, only on
their sending days; a paused mailbox drains nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from optout.mail import windows
from optout.sending import drain
from optout.services.mailboxes import sender_mailboxes
from optout.services.sequences import definitions
from tests.factories import ONE_EMAIL, World
from tests.sending.drain_world import ANN, BOB, expected_days, two_mailboxes

MONDAY = datetime(2026, 11, 2, 9, 0)  # UTC


def _business_hours_sequence(world: World, *, sender: str, people: int) -> None:
    world.ruleset()
    sequence = definitions.create(
        world.db, workspace_id=world.ws, name="Outbound", ruleset="Default", audience=None,
        steps=ONE_EMAIL, from_address=sender, now=world.now,
        schedule=windows.BUSINESS_HOURS,
    )  # fmt: skip
    world.enroll(sequence, [world.person(f"lead{i}@client{i}.com") for i in range(people)])


def _one(world: World) -> drain.Capacity:
    (found,) = drain.forecast(world.db, workspace_id=world.ws, now=world.now).mailboxes
    return found


def test_R37_the_forecast_counts_the_daily_limit_on_sending_days_only(world: World) -> None:
    assert world.now == MONDAY
    sender_mailboxes.create(
        world.db, workspace_id=world.ws, address=ANN, daily_limit=3, min_gap_seconds=0,
        time_zone="UTC", actor="admin@acme", now=world.now,
    )  # fmt: skip
    _business_hours_sequence(world, sender=ANN, people=16)
    ann = _one(world)
    assert (ann.queued, ann.due_now, ann.due_later, ann.sent_today) == (16, 16, 0, 0)
    # 3 today (Monday), then 13 at 3 a day: Tue, Wed, Thu, Fri, and Monday after the weekend.
    assert ann.drained_by == date(2026, 11, 9)
    assert ann.forecast() == "drained by Mon 9 Nov 2026"
    assert ann.assumption() == "3 a day (its daily limit), on Mon-Fri, counted in UTC"

    sender_mailboxes.pause(
        world.db, workspace_id=world.ws, address=ANN, reason="new domain", actor="a@acme",
        now=world.now,
    )  # fmt: skip
    found = drain.forecast(world.db, workspace_id=world.ws, now=world.now)
    assert found.mailboxes[0].drained_by is None
    assert found.mailboxes[0].forecast() == "not while it is paused"
    assert (found.totals.waiting_on_paused, found.totals.paused) == (16, 1)


def test_R37_the_gap_over_the_sending_hours_bounds_a_day_below_the_limit(world: World) -> None:
    sender_mailboxes.create(
        world.db, workspace_id=world.ws, address=BOB, daily_limit=50, min_gap_seconds=3600,
        gap_jitter=0, time_zone="Europe/Berlin", actor="admin@acme", now=world.now,
    )  # fmt: skip
    _business_hours_sequence(world, sender=BOB, people=10)
    bob = _one(world)
    # 09:00-17:00 one hour apart: 8 a day, not 50; 8 today, 2 on Tuesday.
    assert bob.pace.emails == 8
    assert bob.drained_by == date(2026, 11, 3)
    assert bob.assumption() == (
        "8 a day (one email every 3600 s on average, over 8 hours of sending), on Mon-Fri, "
        "counted in Europe/Berlin"
    )


def test_R37_two_mailboxes_their_sends_today_queue_and_drain_days(world: World) -> None:
    two_mailboxes(world)
    found = drain.forecast(world.db, workspace_id=world.ws, now=world.now + timedelta(minutes=1))
    by_address = {c.address: c for c in found.mailboxes}
    ann, bob = by_address[ANN], by_address[BOB]
    assert (ann.sent_today, ann.daily_limit, ann.left_today, ann.queued) == (2, 3, 1, 7)
    assert (bob.sent_today, bob.daily_limit, bob.queued) == (0, 5, 5)
    assert (bob.pace.emails, bob.pace.by_gap) == (4, True)
    ann_day, bob_day = expected_days(world.now)
    assert (ann.forecast(), bob.forecast()) == (ann_day, bob_day)
    assert found.totals.queued == 12
    assert found.totals.sent_today == 2
    assert set(by_address) == {ANN, BOB}
