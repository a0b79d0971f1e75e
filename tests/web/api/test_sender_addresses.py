"""A sender address with a line break is refused when saved, on SQLite and PostgreSQL:
kept, it would break the headers of every email the sequence sends."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]

INJECTED = [
    "sam@acme-sales.com\r\nBcc: everyone@victim.example",
    "Sam <sam@acme-sales.com>\nX-Evil: 1",
    "sam@acme-sales.com\r",
]


def test_R34_a_from_address_with_a_line_break_is_refused_with_a_clear_error(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        world.ruleset("Default")
        keys = api.keys(world)
    http = api.client(keys.member)
    ruleset = http.get("/rulesets").json()["items"][0]
    steps = [{"kind": "email", "subject": "Hi", "text": "Hello"}]

    for n, sender in enumerate(INJECTED):
        for field in ("from_address", "reply_to"):
            body = {"name": f"Seq {n} {field}", "ruleset_id": ruleset["id"], "steps": steps}
            body["from_address"] = "sam@acme-sales.com"
            body[field] = sender
            answer = http.post("/sequences", json=body)
            assert answer.status_code == 422, (sender, field, answer.text)
            assert "line break" in error_of(answer)["message"]

    assert http.get("/sequences").json()["total"] == 0
    fine = http.post(
        "/sequences",
        json={
            "name": "Fine",
            "ruleset_id": ruleset["id"],
            "from_address": "Sam <sam@acme-sales.com>",
            "steps": steps,
        },
    )
    assert fine.status_code == 201, fine.text
