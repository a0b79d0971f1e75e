"""`optout mailbox capacity` (R37, R40): each mailbox's sends today against its limit,
what is queued and the day its queue will have drained, in words and as JSON."""

from __future__ import annotations

from datetime import timedelta

from optout.services.mailboxes import sender_mailboxes
from tests.cli.conftest import Cli
from tests.sending.drain_world import ANN, BOB, expected_days, two_mailboxes


def test_R37_mailbox_capacity_prints_sends_today_queue_and_drain_day(cli: Cli) -> None:
    with cli.seed() as world:
        two_mailboxes(world)
    at = (cli.now + timedelta(minutes=1)).isoformat()
    ann_day, bob_day = expected_days(cli.now)
    shown = cli.ok("mailbox", "capacity", "--now", at).stdout
    flat = " ".join(shown.split())
    assert ANN in shown
    assert BOB in shown
    assert "2 of 3" in shown
    assert "0 of 5" in shown
    for day in (ann_day, bob_day):
        assert all(word in flat for word in day.split())
    assert "All 2 mailboxes: 2 sent today, 12 queued (" in flat

    answer = cli.json("mailbox", "capacity", "--now", at)
    by_address = {m["address"]: m for m in answer["mailboxes"]}
    assert (by_address[ANN]["sent_today"], by_address[ANN]["queued"]) == (2, 7)
    assert by_address[ANN]["forecast"] == ann_day
    assert by_address[BOB]["forecast"] == bob_day
    assert by_address[BOB]["assuming"].startswith("4 a day (one email every 7200 s")
    assert answer["totals"]["queued"] == 12
    assert (
        by_address[ANN]["today"] == sender_mailboxes.local_day("Europe/Berlin", cli.now).isoformat()
    )
