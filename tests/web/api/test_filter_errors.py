"""A filter the API refuses is answered in the admin's words: which condition ("the
second condition in the first group"), the field by its label, what would be accepted;
where it is in the filter's JSON form stays in `location` for programs (R34)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from tests.factories import World
from tests.user_text import RAW_FIELD_PATH, admin_unfamiliar
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]


def _refused(api: Api, committed: Committed, filter: Any, level: str = "people") -> dict[str, Any]:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member)
    saved = http.post("/exclusions", json={"name": "Broken", "level": level, "filter": filter})
    assert saved.status_code == 422, saved.text
    with api.engine.connect() as db:
        kept = db.scalar(
            sa.select(sa.func.count()).where(
                t.exclusions.c.workspace_id == world.ws, t.exclusions.c.name == "Broken"
            )
        )
    assert kept == 0
    return error_of(saved)


def test_R34_a_bad_condition_is_named_by_its_place_and_its_field_label(
    api: Api, committed: Committed
) -> None:
    error = _refused(
        api,
        committed,
        {
            "all": [
                {"field": "person.title", "op": "contains", "value": "cto"},
                {"field": "person.last_activity_any_at", "op": "gt", "value": "last spring"},
            ]
        },
    )

    assert error["code"] == "invalid_filter"
    assert error["message"].startswith("the second condition, “Last activity (any) is after")
    assert "Last activity (any) takes a date such as 2026-01-31" in error["message"]
    assert "'last spring'" in error["message"]
    assert error["where"].startswith("the second condition")
    assert error["location"] == "filter.all[1]"
    assert admin_unfamiliar(error["message"]) == []


def test_R34_a_condition_inside_a_group_names_both_positions(
    api: Api, committed: Committed
) -> None:
    error = _refused(
        api,
        committed,
        {
            "all": [
                {
                    "any": [
                        {"field": "person.title", "op": "contains", "value": "vp"},
                        {"field": "person.title", "op": "gt", "value": 5},
                    ]
                },
                {"field": "company.domain", "op": "in", "value": ["acme.com"]},
            ]
        },
    )

    assert error["message"].startswith("the second condition in the first group, “Job title")
    # what the operator would take, said in words a person reads
    assert "'>' does not apply to Job title, a text field" in error["message"]
    assert "takes date or number fields" in error["message"]
    assert error["location"] == "filter.all[0].any[1]"
    assert admin_unfamiliar(error["message"]) == []


@pytest.mark.parametrize(
    ("filter", "level", "location", "words"),
    [
        (
            {"all": [{"field": "company.domain", "op": "in", "value": ["acme.com"]}, "cto"]},
            "people",
            "filter.all[1]",
            "the second condition: expected a condition or a group",
        ),
        (
            {"any": [{"field": "person.title", "op": "contains", "value": "cto"}]},
            "company",
            "filter.any[0]",
            "the first condition, “Job title contains cto”: Job title cannot be used in a "
            "company-level filter",
        ),
        (
            {"field": "person.fields.tier", "op": "in", "value": []},
            "people",
            "filter",
            "the condition “Tier (custom) is one of ()”: 'in' needs at least one value",
        ),
    ],
)
def test_R34_every_kind_of_tree_error_keeps_a_location_and_speaks_in_words(
    api: Api, committed: Committed, filter: Any, level: str, location: str, words: str
) -> None:
    error = _refused(api, committed, filter, level)

    assert error["message"].startswith(words), error["message"]
    assert error["location"] == location
    assert admin_unfamiliar(error["message"]) == []


def test_R34_a_text_filter_error_keeps_its_column(api: Api, committed: Committed) -> None:
    error = _refused(api, committed, "person.title = cto and")

    assert error["where"].startswith("at column")
    assert "location" not in error


@pytest.mark.parametrize(
    ("filter", "words"),
    [
        (
            {"field": "person.shoe_size", "op": "eq", "value": 42},
            "the fields a filter can use are Email, Email domain",
        ),
        ("person.shoe_size = 42", "Last activity (any), Last reply"),
        ({"field": "person.titel", "op": "contains", "value": "vp"}, "did you mean Job title?"),
    ],
)
def test_R34_a_mistyped_field_is_answered_with_labels_not_field_paths(
    api: Api, committed: Committed, filter: Any, words: str
) -> None:
    error = _refused(api, committed, filter)

    assert error["code"] == "invalid_filter"
    typed = filter["field"] if isinstance(filter, dict) else filter.split()[0]
    assert f"unknown field '{typed}'" in error["message"]
    assert words in error["message"]
    # No field's path, quoted or not: the only dotted name is the one the caller sent.
    assert RAW_FIELD_PATH.findall(error["message"]) == []
    assert admin_unfamiliar(error["message"]) == []
