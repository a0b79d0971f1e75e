"""Turning exclusions off in a ruleset that sequences use, over the API: 409 naming the
rules that would stop applying, nothing changed, until `confirm` is true (R16)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from tests.factories import World
from tests.web.api.conftest import Api

Committed = Callable[[], AbstractContextManager[World]]


def test_R16_api_turning_exclusions_off_answers_409_until_confirmed(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        world.company("acme.com", "Acme")
        for n in range(8):
            world.person(f"p{n}@initech.com", company="initech.com")
        world.person("dan@acme.com", company="acme.com")
        world.exclusion(
            "Customers", "company", "company.domain in (acme.com)", exclude_from_sequences=True
        )
        world.ruleset("Standard")
        world.sequence("Outbound", ruleset="Standard")
        keys = api.keys(world)
    admin = api.client(keys.admin)
    ruleset_id = admin.get("/rulesets").json()["items"][0]["id"]

    refused = admin.patch(f"/rulesets/{ruleset_id}", json={"exclusions_enabled": False})
    assert refused.status_code == 409, refused.text
    message = refused.json()["error"]["message"]
    assert "makes Outbound ignore every exclusion" in message
    assert "'Customers' (set to apply in every sequence) covers 1 person" in message
    assert admin.get(f"/rulesets/{ruleset_id}").json()["exclusions_enabled"] is True

    done = admin.patch(
        f"/rulesets/{ruleset_id}", json={"exclusions_enabled": False, "confirm": True}
    )
    assert done.status_code == 200, done.text
    assert done.json()["exclusions_enabled"] is False
