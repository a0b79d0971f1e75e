"""A sequence's sending days and hours through the API: given when it is created, shown
with it, changed later; a schedule that cannot be kept is refused (R38)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]
STEPS = [
    {"kind": "email", "subject": "Hi", "text": "Hello"},
    {"kind": "wait", "days": 2},
    {"kind": "email", "text": "Following up."},
]


def test_R38_a_schedule_is_given_shown_and_changed_through_the_api(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        world.ruleset("Default")
        keys = api.keys(world)
    http = api.client(keys.member)
    ruleset = http.get("/rulesets").json()["items"][0]
    body = {
        "name": "Weekdays",
        "ruleset_id": ruleset["id"],
        "from_address": "sam@acme-sales.com",
        "steps": STEPS,
        "schedule": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "9:00", "end": "17:00"},
    }
    created = http.post("/sequences", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["schedule"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
        "business_day_waits": False,
    }
    # The follow-up without a subject of its own is kept: it is sent as a reply.
    assert created.json()["steps"][2]["subject"] == ""

    without = http.post("/sequences", json={**body, "name": "Any time", "schedule": None})
    assert without.json()["schedule"]["days"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert (without.json()["schedule"]["start"], without.json()["schedule"]["end"]) == (
        "00:00",
        "24:00",
    )

    sequence_id = created.json()["id"]
    changed = http.put(
        f"/sequences/{sequence_id}/schedule",
        json={"days": ["sat", "sun"], "start": "10:00", "end": "12:30", "business_day_waits": True},
    )
    assert changed.status_code == 200, changed.text
    assert http.get(f"/sequences/{sequence_id}").json()["schedule"] == {
        "days": ["sat", "sun"],
        "start": "10:00",
        "end": "12:30",
        "business_day_waits": True,
    }

    backwards = http.put(
        f"/sequences/{sequence_id}/schedule",
        json={"days": ["mon"], "start": "17:00", "end": "09:00"},
    )
    assert backwards.status_code == 422
    assert "start before they end" in error_of(backwards)["message"]
    late = http.put(
        f"/sequences/{sequence_id}/schedule", json={"days": ["mon"], "start": "9", "end": "25:00"}
    )
    assert late.status_code == 422
    assert "time of day" in error_of(late)["message"]
