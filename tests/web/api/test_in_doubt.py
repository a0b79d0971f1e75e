"""Emails in doubt through the JSON API: list them with why, release one (sent again
with the same Message-ID), cancel one, and set the workspace's policy (admin only)."""

from __future__ import annotations

import email
from collections.abc import Callable
from contextlib import AbstractContextManager
from email import policy

from optout.clock import utcnow
from optout.services.sequences import definitions
from tests.factories import World
from tests.sending.lost_answers import worker_pass
from tests.sending.smtp_server import DroppingAfterData, smtp_server
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]
STEPS = (definitions.Step(kind="email", subject="Hello", body_text="Hi"),)


def test_R35_in_doubt_emails_are_listed_released_and_cancelled(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        ann = world.person("ann@acme.com")
        ben = world.person("ben@acme.com")
        world.enroll(world.sequence("Outbound", steps=STEPS), [ann, ben])
        keys = api.keys(world)
    member, admin = api.client(keys.member), api.client(keys.admin)
    handler = DroppingAfterData(times=2)
    with smtp_server(handler) as port:
        assert worker_pass(api.engine, port, utcnow()).in_doubt == 2
        listed = member.get("/in-doubt").json()
        assert listed["total"] == 2
        assert listed["resend_after_minutes"] is None
        by_to = {item["to"]: item for item in listed["items"]}
        assert "may or may not have been delivered" in by_to["ann@acme.com"]["reason"]
        first_id = by_to["ann@acme.com"]["message_id"]

        released = member.post(f"/in-doubt/{by_to['ann@acme.com']['email_id']}/release")
        assert released.json() == {
            "email_id": by_to["ann@acme.com"]["email_id"],
            "status": "queued",
            "actor": released.json()["actor"],
        }
        cancelled = member.post(f"/in-doubt/{by_to['ben@acme.com']['email_id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        again = member.post(f"/in-doubt/{by_to['ben@acme.com']['email_id']}/release")
        assert again.status_code == 409
        assert error_of(again)["code"] == "conflict"
        assert worker_pass(api.engine, port, utcnow()).sent == 1
    ann_ids = [
        str(email.message_from_bytes(r.content, policy=policy.default)["Message-ID"])
        for r in handler.received
        if r.recipients == ["ann@acme.com"]
    ]
    assert ann_ids == [first_id, first_id]
    assert member.get("/in-doubt").json()["total"] == 0

    refused = member.put("/in-doubt/policy", json={"resend_after_minutes": 30})
    assert refused.status_code == 403
    assert admin.put("/in-doubt/policy", json={"resend_after_minutes": 30}).status_code == 200
    assert member.get("/in-doubt").json()["resend_after_minutes"] == 30
    assert admin.put("/in-doubt/policy", json={"resend_after_minutes": 0}).status_code == 422
    assert admin.put("/in-doubt/policy", json={"resend_after_minutes": None}).status_code == 200
    assert member.get("/in-doubt").json()["resend_after_minutes"] is None
