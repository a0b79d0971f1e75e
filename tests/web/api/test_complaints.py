"""Spam complaints through the JSON API: listed by kind, shown on the person, first in
explain, and cleared by an admin with a reason (R29, R33, R36)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from optout.services.suppression import optouts
from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]


def test_R36_api_lists_explains_and_clears_a_complaint(api: Api, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com")
        outbound = world.sequence()
        optouts.complain(
            world.db,
            workspace_id=world.ws,
            email="anna@acme.com",
            actor="feedback-loop",
            now=world.now,
            reporting_domain="fbl.mail.example",
        )
        keys = api.keys(world)
    member, admin = api.client(keys.member), api.client(keys.admin)

    listed = member.get("/optouts", params={"kind": "complaint"}).json()["items"]
    assert [(r["email"], r["kind"], r["channel"], r["reason"]) for r in listed] == [
        ("anna@acme.com", "complaint", "complaint", "abuse report from fbl.mail.example")
    ]
    assert member.get("/optouts", params={"kind": "opt_out"}).json()["items"] == []
    assert member.get(f"/people/{anna}").json()["complained"] is True
    explained = member.get("/explain", params={"person_id": anna, "sequence_id": outbound})
    reason = explained.json()["primary_reason"]
    assert reason["check"] == "complained"
    assert reason["evidence"]["reporting_domain"] == "fbl.mail.example"

    by_member = member.post(
        "/optouts/clear", json={"email": "anna@acme.com", "reason": "x", "kind": "complaint"}
    )
    assert by_member.status_code == 403
    wrong_kind = admin.post("/optouts/clear", json={"email": "anna@acme.com", "reason": "x"})
    assert wrong_kind.status_code == 404
    assert "has not opted out" in error_of(wrong_kind)["message"]
    cleared = admin.post(
        "/optouts/clear",
        json={"email": "anna@acme.com", "reason": "reported by mistake", "kind": "complaint"},
    )

    assert cleared.status_code == 200
    assert cleared.json()["kind"] == "complaint"
    assert member.get(f"/people/{anna}").json()["complained"] is False
    ledger = member.get("/optouts/ledger", params={"email": "anna@acme.com"}).json()
    assert [(r["kind"], r["action"], r["reason"]) for r in ledger] == [
        ("complaint", "added", "abuse report from fbl.mail.example"),
        ("complaint", "cleared", "reported by mistake"),
    ]
