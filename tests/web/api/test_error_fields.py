"""The API's error body names the input a refusal is about (`field`), as the pages show
it beside that input; its message names the input in words, quotes what was sent and
says what would do (R34)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]


def test_R34_a_mailbox_address_with_two_at_signs_is_refused_naming_its_field(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)

    answer = api.client(keys.admin).post("/mailboxes", json={"address": "a@@b"})

    assert answer.status_code == 422
    error = error_of(answer)
    assert error["code"] == "invalid_input"
    assert error["field"] == "address"
    assert error["message"].startswith("Mailbox address: 'a@@b' is not an email address")
    assert "such as name@example.com" in error["message"]


def test_R34_a_company_domain_with_two_dots_is_refused_naming_its_field(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)

    answer = api.client(keys.member).post("/companies", json={"domain": "acme..com"})

    assert answer.status_code == 422
    assert error_of(answer) == {
        "code": "invalid_input",
        "field": "domain",
        "message": "Company domain: 'acme..com' is not a domain (it has two dots in a row): "
        "type a domain such as acme.com",
    }


def test_R34_a_sequence_name_in_use_is_a_conflict_naming_the_name(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)
        world.sequence("Intro")

    answer = api.client(keys.member).get("/sequences")
    made = answer.json()["items"][0]
    again = api.client(keys.member).post(
        "/sequences",
        json={
            "name": "Intro",
            "ruleset_id": made["ruleset_id"],
            "from_address": "sam@acme-sales.com",
            "steps": [{"kind": "email", "subject": "Hi", "text": "Hello"}],
        },
    )

    assert again.status_code == 409
    error = error_of(again)
    assert error["field"] == "name"
    assert error["message"] == "Name: a sequence named 'Intro' exists already: choose another name"


def test_R34_a_body_field_of_the_wrong_type_is_named_as_the_field(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)

    answer = api.client(keys.member).post("/companies", json={"domain": 42})

    assert answer.status_code == 422
    error = error_of(answer)
    assert error["where"] == "body.domain"
    assert error["field"] == "domain"
