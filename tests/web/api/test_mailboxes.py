"""Sender mailboxes over the JSON API (R37, R40): an admin adds, changes, pauses, resumes
and removes them; a member reads them; bad values are refused naming the problem."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]


def test_R37_an_admin_manages_mailboxes_and_a_member_reads_them(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        sequence = world.sequence()
        person = world.person("lead@client.com")
        world.enroll(sequence, [person])
        keys = api.keys(world)
    admin, member = api.client(keys.admin), api.client(keys.member)

    made = admin.post(
        "/mailboxes",
        json={
            "address": "Ann@Acme-Sales.com",
            "display_name": "Ann Lee",
            "daily_limit": 30,
            "time_zone": "Europe/Berlin",
        },
    )
    assert made.status_code == 201, made.text
    ann = made.json()
    assert (ann["address"], ann["daily_limit"], ann["min_gap_seconds"]) == (
        "ann@acme-sales.com",
        30,
        90,
    )
    assert (ann["transport"], ann["status"], ann["sent_today"]) == ("relay", "active", 0)

    # The sequence's From address became a mailbox too, with no limit and no gap.
    listed = member.get("/mailboxes").json()
    assert listed["total"] == 2
    sam = next(m for m in listed["items"] if m["address"] == "sam@acme-sales.com")
    assert (sam["daily_limit"], sam["min_gap_seconds"], sam["queued"]) == (None, 0, 1)
    assert sam["sequences"] == ["Outbound"]

    assert member.post("/mailboxes", json={"address": "x@acme-sales.com"}).status_code == 403
    bad_zone = admin.patch(f"/mailboxes/{ann['id']}", json={"time_zone": "Mars/Olympus"})
    assert bad_zone.status_code == 422
    assert "not a time zone" in error_of(bad_zone)["message"]
    changed = admin.patch(f"/mailboxes/{ann['id']}", json={"daily_limit": 25, "gap_jitter": 0})
    assert (changed.json()["daily_limit"], changed.json()["gap_jitter"]) == (25, 0)
    twice = admin.post("/mailboxes", json={"address": "ann@acme-sales.com"})
    assert twice.status_code == 409

    paused = admin.post(f"/mailboxes/{ann['id']}/pause", json={"reason": "new domain"})
    assert (paused.json()["status"], paused.json()["pause_reason"]) == ("paused", "new domain")
    resumed = admin.post(f"/mailboxes/{ann['id']}/resume")
    assert resumed.json()["status"] == "active"

    assert admin.put(
        f"/sequences/{sequence}/mailboxes", json={"addresses": ["ann@acme-sales.com"]}
    ).json() == {"sequence_id": sequence, "mailboxes": ["ann@acme-sales.com"]}

    # Sam's mailbox still sends the enrollment that started with it: removing it needs
    # the mailbox that enrollment moves to.
    refused = admin.delete(f"/mailboxes/{sam['id']}")
    assert refused.status_code == 409
    assert "say which mailbox" in error_of(refused)["message"]
    removed = admin.delete(f"/mailboxes/{sam['id']}", params={"move_to": "ann@acme-sales.com"})
    assert removed.json() == {
        "address": "sam@acme-sales.com",
        "moved_to": "ann@acme-sales.com",
        "enrollments_moved": 1,
        "round_robin": False,
    }
    assert admin.get(f"/mailboxes/{ann['id']}").json()["queued"] == 1
    assert admin.get(f"/mailboxes/{sam['id']}").status_code == 404


def test_R40_the_breaker_s_lines_are_read_by_anyone_and_changed_by_an_admin(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)
    admin, member = api.client(keys.admin), api.client(keys.member)
    assert member.get("/mailboxes/breaker").json() == {
        "bounce_pause_rate": 0.05,
        "complaint_pause_rate": 0.001,
        "domain_complaint_pause_rate": 0.003,
    }
    assert member.put("/mailboxes/breaker", json={"bounce_pause_rate": 0.1}).status_code == 403
    assert admin.put("/mailboxes/breaker", json={"bounce_pause_rate": 1.5}).status_code == 422
    changed = admin.put("/mailboxes/breaker", json={"bounce_pause_rate": 0.1})
    assert changed.json()["bounce_pause_rate"] == 0.1
