"""GET /mailboxes/capacity (R37, R40): each mailbox's sends today, queue and the day its
queue will have drained at these limits, with the pace assumed and a workspace total."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta

import pytest

from optout.clock import utcnow
from optout.services.mailboxes import sender_mailboxes
from tests.factories import World
from tests.sending.drain_world import ANN, BOB, expected_days, two_mailboxes
from tests.web.api.conftest import Api


@pytest.fixture
def now() -> datetime:
    return utcnow().replace(microsecond=0) - timedelta(minutes=1)


def test_R37_the_api_answers_each_mailboxs_capacity_and_drain_day(
    api: Api, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> None:
    with committed() as world:
        two_mailboxes(world)
        keys = api.keys(world)
    answer = api.client(keys.member).get("/mailboxes/capacity")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    by_address = {m["address"]: m for m in body["items"]}
    ann, bob = by_address[ANN], by_address[BOB]
    ann_day, bob_day = expected_days(now)
    assert (ann["sent_today"], ann["daily_limit"], ann["left_today"]) == (2, 3, 1)
    assert (ann["queued"], ann["due_now"], ann["due_later"]) == (7, 7, 0)
    assert (ann["pace_per_day"], ann["pace_set_by"], ann["forecast"]) == (3, "daily limit", ann_day)
    assert ann["today"] == sender_mailboxes.local_day("Europe/Berlin", now).isoformat()
    assert (
        ann["drained_by"]
        == (sender_mailboxes.local_day("Europe/Berlin", now) + timedelta(days=2)).isoformat()
    )
    assert (bob["sent_today"], bob["queued"], bob["pace_per_day"], bob["pace_set_by"]) == (
        0,
        5,
        4,
        "gap",
    )
    assert bob["forecast"] == bob_day
    assert len(bob["sending_days"]) == 7
    totals = body["totals"]
    assert (totals["mailboxes"], totals["sent_today"], totals["daily_limit"]) == (2, 2, 8)
    assert (totals["queued"], totals["paused"], totals["waiting_on_paused"]) == (12, 0, 0)
    assert totals["drained_by"] == max(ann["drained_by"], bob["drained_by"], key=date.fromisoformat)
    # A mailbox id still answers its own mailbox: the capacity path is not taken for one.
    assert api.client(keys.member).get(f"/mailboxes/{ann['id']}").json()["address"] == ANN
