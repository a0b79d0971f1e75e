"""A mistyped field or operator gets the place and the nearest known name (R34)."""

from __future__ import annotations

import pytest

from optout.errors import InvalidFilter
from optout.filters import Level, parse, to_text
from optout.filters.ast import Condition
from optout.filters.fields import FIELDS
from optout.filters.validate import validate
from tests.user_text import RAW_FIELD_PATH


def _error(text: str, level: Level = Level.PEOPLE) -> InvalidFilter:
    with pytest.raises(InvalidFilter) as caught:
        validate(parse(text), level)
    return caught.value


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("company.domian in (acme.com)", "company.domain"),
        ("compnay.domain = acme.com", "company.domain"),
        ("domain in (acme.com)", "company.domain"),
        ("person.titel contains sales", "person.title"),
        ("company.title contains sales", "person.title"),
        ("person.email_domian is personal", "person.email_domain"),
    ],
)
def test_R34_unknown_field_suggests_the_nearest_and_says_where(text: str, suggestion: str) -> None:
    error = _error(text)
    field = text.split()[0]
    label = FIELDS[suggestion].label
    assert error.reason == f"unknown field {field!r}; did you mean {label}?"
    assert field in error.where  # the condition as written


def test_R34_unknown_field_with_nothing_near_lists_the_fields_by_label() -> None:
    error = _error("person.shoe = 42")
    assert "did you mean" not in error.reason
    labels = ", ".join(field.label for field in FIELDS.values())
    assert error.reason == (
        f"unknown field 'person.shoe'; the fields a filter can use are {labels}, and the "
        "custom fields of people, companies and opportunities"
    )
    assert RAW_FIELD_PATH.findall(error.reason) == []


@pytest.mark.parametrize(
    ("text", "column", "suggestion"),
    [
        ("company.domain equals acme.com", 16, "="),
        ("company.domain is acme.com", 16, "="),
        ("person.email ends_with @gmail.com", 14, "ends with"),
        ("company.domain endswith .io", 16, "ends with"),
        ("person.title contain sales", 14, "contains"),
        ("company.domain isnt empty", 16, "is not empty"),
        ("person.email_domain is personl", 21, "is personal"),
    ],
)
def test_R34_unknown_operator_in_text_suggests_the_nearest(
    text: str, column: int, suggestion: str
) -> None:
    error = _error(text)
    assert error.where == f"at column {column}"
    assert error.reason.endswith(f"; did you mean {suggestion!r}?")


def test_R34_unknown_operator_in_a_tree_suggests_the_nearest() -> None:
    with pytest.raises(InvalidFilter) as caught:
        validate(Condition("person.title", "contians", "vp"), Level.PEOPLE)
    assert caught.value.reason == "unknown operator 'contians'; did you mean contains?"
    assert caught.value.where == "the condition “Job title contians vp”"
    assert caught.value.location == "filter"


def test_R34_a_condition_of_the_wrong_level_is_named_as_written() -> None:
    error = _error("person.title contains vp", Level.COMPANY)
    assert error.where == "the condition “Job title contains vp”"
    assert "cannot be used in a company-level filter" in error.reason


def test_quoted_text_printing_reads_back_the_same_filter() -> None:
    node = parse('person.title contains vp and company.domain in (acme.com, "a b.io")')
    quoted = to_text(node, quote_text=True)
    assert quoted == 'person.title contains "vp" and company.domain in ("acme.com", "a b.io")'
    assert parse(quoted) == node
