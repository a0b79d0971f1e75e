"""A small world for the drain forecast (R37): two mailboxes, limits 3 and 5, and twelve
queued emails, two of ann's sent today."""

from __future__ import annotations

from datetime import datetime, timedelta

from optout.mail import windows
from optout.sending.claim import claim
from optout.services.mailboxes import sender_mailboxes
from optout.services.sequences import definitions
from tests.factories import ONE_EMAIL, World

ANN = "ann@acme-sales.com"
BOB = "bob@acme-sales.com"


def two_mailboxes(world: World) -> None:
    """ann: 3 a day, no gap, Europe/Berlin, any hour, 9 enrolled and 2 of them claimed at
    `world.now` + 30 s (2 of 3 today, 7 queued); bob: 5 a day but 2 hours apart over
    09:00-17:00 (4 a day), UTC, 5 queued."""
    db, ws, now = world.db, world.ws, world.now
    sender_mailboxes.create(
        db, workspace_id=ws, address=ANN, display_name="Ann Lee", daily_limit=3,
        min_gap_seconds=0, time_zone="Europe/Berlin", actor="admin@acme", now=now,
    )  # fmt: skip
    sender_mailboxes.create(
        db, workspace_id=ws, address=BOB, daily_limit=5, min_gap_seconds=7200, gap_jitter=0,
        time_zone="UTC", actor="admin@acme", now=now,
    )  # fmt: skip
    world.ruleset()
    outbound = definitions.create(
        db, workspace_id=ws, name="Outbound", ruleset="Default", audience=None, steps=ONE_EMAIL,
        from_address=f"Ann Lee <{ANN}>", now=now,
    )  # fmt: skip
    world.enroll(outbound, [world.person(f"lead{i}@client{i}.com") for i in range(9)])
    sent = claim(db, now=now + timedelta(seconds=30), limit=2, workspace_id=ws)
    assert len(sent.claims) == 2
    follow_up = definitions.create(
        db, workspace_id=ws, name="Follow-up", ruleset="Default", audience=None,
        steps=ONE_EMAIL, from_address=BOB, now=now,
        schedule=windows.Schedule(windows.EVERY_DAY, 9 * 60, 17 * 60),
    )  # fmt: skip
    world.enroll(follow_up, [world.person(f"other{i}@firm{i}.com") for i in range(5)])


def expected_days(now: datetime) -> tuple[str, str]:
    """(ann's day, bob's day) as the forecast words them: ann has 1 left today and needs
    2 more days for 6; bob's gap allows 4 a day, so 1 waits until tomorrow."""
    ann = sender_mailboxes.local_day("Europe/Berlin", now) + timedelta(days=2)
    bob = sender_mailboxes.local_day("UTC", now) + timedelta(days=1)
    return (
        f"drained by {ann:%a} {ann.day} {ann:%b %Y}",
        f"drained by {bob:%a} {bob.day} {bob:%b %Y}",
    )
