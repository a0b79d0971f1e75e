"""A sequence's automatic enrollment through the API (R41): on by default for a new
sequence built from an audience, off without one or when asked; read with the sequence,
changed later with its dates; refused without an audience or with its end before its
start; explain says whether the person will be enrolled automatically (R29)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from optout.clock import utcnow
from optout.services.enrollments import automatic
from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]
STEPS = [{"kind": "email", "subject": "Hi", "text": "Hello"}]


def test_R41_automatic_enrollment_is_set_read_and_changed_through_the_api(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        world.ruleset("Default")
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person("bob@acme.com", company="acme.com", title="Office manager")
        audience_id = world.audience("CTOs", filter='person.title contains "cto"')
        keys = api.keys(world)
    http = api.client(keys.member)
    ruleset = http.get("/rulesets").json()["items"][0]
    body = {
        "name": "From the audience",
        "ruleset_id": ruleset["id"],
        "from_address": "sam@acme-sales.com",
        "steps": STEPS,
        "audience_id": audience_id,
    }
    created = http.post("/sequences", json=body)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["enroll_automatically"] is True
    assert (made["enroll_automatically_from"], made["enroll_automatically_until"]) == (None, None)
    assert made["enrolled_automatically_last_day"] == 0

    asked_off = http.post(
        "/sequences", json={**body, "name": "Asked off", "enroll_automatically": False}
    )
    assert asked_off.json()["enroll_automatically"] is False
    by_hand = http.post("/sequences", json={**body, "name": "By hand", "audience_id": None})
    assert by_hand.json()["enroll_automatically"] is False

    # The worker's pass enrolls Ann, the one member; the sequence counts her.
    with api.engine.begin() as db:
        assert automatic.run(db, workspace_id=world.ws, now=utcnow()) == 1
    sequence_id = made["id"]
    read = http.get(f"/sequences/{sequence_id}").json()
    assert read["enrolled_automatically_last_day"] == 1
    assert read["enrollments"] == {"not_started": 1}
    ann = http.get("/explain", params={"sequence_id": sequence_id, "email": "ann@acme.com"})
    assert ann.json()["automatic_enrollment"] == (
        "will not be enrolled automatically: already active in this sequence"
    )
    bob = http.get("/explain", params={"sequence_id": sequence_id, "email": "bob@acme.com"})
    assert bob.json()["automatic_enrollment"] == (
        "will not be enrolled automatically: not in its audience"
    )
    off = http.get(
        "/explain", params={"sequence_id": asked_off.json()["id"], "email": "ann@acme.com"}
    )
    assert off.json()["automatic_enrollment"] is None

    dated = http.put(
        f"/sequences/{sequence_id}/automatic-enrollment",
        json={
            "enroll_automatically": True,
            "enroll_automatically_from": "2030-01-01T09:00:00+01:00",
            "enroll_automatically_until": "2030-02-01T18:00:00",
        },
    )
    assert dated.status_code == 200, dated.text
    again = http.get(f"/sequences/{sequence_id}").json()
    assert again["enroll_automatically"] is True
    assert again["enroll_automatically_from"] == "2030-01-01T08:00:00"
    assert again["enroll_automatically_until"] == "2030-02-01T18:00:00"

    backwards = http.put(
        f"/sequences/{sequence_id}/automatic-enrollment",
        json={
            "enroll_automatically": True,
            "enroll_automatically_from": "2030-02-01T09:00:00",
            "enroll_automatically_until": "2030-01-01T09:00:00",
        },
    )
    assert backwards.status_code == 422
    assert "must come after its start" in error_of(backwards)["message"]
    no_audience = http.put(
        f"/sequences/{by_hand.json()['id']}/automatic-enrollment",
        json={"enroll_automatically": True},
    )
    assert no_audience.status_code == 422
    assert "has no audience" in error_of(no_audience)["message"]
    unknown = http.put(
        f"/sequences/{sequence_id}/automatic-enrollment", json={"enroll_automaticaly": True}
    )
    assert unknown.status_code == 422

    stopped = http.put(
        f"/sequences/{sequence_id}/automatic-enrollment", json={"enroll_automatically": False}
    )
    assert stopped.status_code == 200
    final = stopped.json()
    assert (final["enroll_automatically"], final["enroll_automatically_from"]) == (False, None)
    assert final["enrollments"] == {"not_started": 1}, "nobody is unenrolled"
