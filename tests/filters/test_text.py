"""The text syntax: examples from the spec, quoting, error positions, and a round-trip property."""

# Test names carry the SPEC requirement they check (test_R19_..., test_R34_...).

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optout.errors import InvalidFilter
from optout.filters.ast import All, AnyOf, Condition, Node, Not, Scalar, Value
from optout.filters.operators import OPERATORS, Arg, Operator
from optout.filters.text import parse, to_text


def _c(field: str, op: str, value: Value = None) -> Condition:
    return Condition(field, op, value)


def _condition(text: str) -> Condition:
    node = parse(text)
    assert isinstance(node, Condition)
    return node


def _raises(text: str) -> InvalidFilter:
    with pytest.raises(InvalidFilter) as info:
        parse(text)
    return info.value


# Examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "node"),
    [
        (
            'person.title contains any ("sales", "recruiter")',
            _c("person.title", "contains_any", ("sales", "recruiter")),
        ),
        (
            "person.last_replied_at within last 30 days",
            _c("person.last_replied_at", "within_last_days", 30),
        ),
        (
            "company.created_at older than 365 DAYS",
            _c("company.created_at", "older_than_days", 365),
        ),
        ("person.email_domain is personal", _c("person.email_domain", "is_personal")),
        ("opportunity.amount >= 10000.5", _c("opportunity.amount", "gte", 10000.5)),
        ("opportunity.amount < -3", _c("opportunity.amount", "lt", -3)),
        ("opportunity.is_won = TRUE", _c("opportunity.is_won", "eq", True)),
        ("person.opportunity.stage is not empty", _c("person.opportunity.stage", "is_not_empty")),
        ("person.email ends with @gmail.com", _c("person.email", "ends_with", "@gmail.com")),
        ("person.email!=ceo@acme.com", _c("person.email", "neq", "ceo@acme.com")),
        ("person.created_at > '2026-01-31'", _c("person.created_at", "gt", "2026-01-31")),
        ('company.fields.tier = "1"', _c("company.fields.tier", "eq", "1")),
        ("company.domain NOT IN (edu)", _c("company.domain", "not_in", ("edu",))),
    ],
)
def test_parses_single_conditions(text: str, node: Node) -> None:
    assert parse(text) == node


def test_every_operator_is_spelled_from_the_table() -> None:
    sample: dict[Arg, str] = {Arg.NONE: "", Arg.ONE: " x", Arg.LIST: " (x, y)", Arg.DAYS: " 7 days"}
    for op in OPERATORS.values():
        assert _condition(f"person.title {op.syntax}{sample[op.arg]}").op == op.name


def test_R19_and_with_a_list_and_an_exception() -> None:
    text = 'company.domain in (acme.com, globex.io) and person.email != "ceo@acme.com"'
    node = All(
        (
            _c("company.domain", "in", ("acme.com", "globex.io")),
            _c("person.email", "neq", "ceo@acme.com"),
        )
    )
    assert parse(text) == node
    assert to_text(node) == (
        "company.domain in (acme.com, globex.io) and person.email != ceo@acme.com"
    )


def test_R19_not_over_a_parenthesised_or() -> None:
    text = 'not (person.status = "Customer" or company.fields.tier = "1")'
    node = Not(AnyOf((_c("person.status", "eq", "Customer"), _c("company.fields.tier", "eq", "1"))))
    assert parse(text) == node
    assert to_text(node) == 'not (person.status = Customer or company.fields.tier = "1")'


def test_R19_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    a, b, c = (
        _c("person.title", "eq", "a"),
        _c("person.title", "eq", "b"),
        _c("person.title", "eq", "c"),
    )
    assert parse("person.title = a or person.title = b and not person.title = c") == AnyOf(
        (a, All((b, Not(c))))
    )
    assert parse("(person.title = a or person.title = b) and person.title = c") == All(
        (AnyOf((a, b)), c)
    )


def test_R19_chains_flatten_across_parentheses() -> None:
    a, b, c = (
        _c("person.title", "eq", "a"),
        _c("person.title", "eq", "b"),
        _c("person.title", "eq", "c"),
    )
    assert parse("person.title = a and person.title = b and person.title = c") == All((a, b, c))
    assert parse("person.title = a and (person.title = b and person.title = c)") == All((a, b, c))
    assert parse("((person.title = a)) or (person.title = b or person.title = c)") == AnyOf(
        (a, b, c)
    )


def test_R19_not_before_a_field_is_negation_not_an_operator() -> None:
    assert parse("not person.title not contains sales") == Not(
        _c("person.title", "not_contains", "sales")
    )
    assert parse("NOT NOT person.title is empty") == Not(Not(_c("person.title", "is_empty")))
    assert parse("person.status not in (lead, 'Customer')") == _c(
        "person.status", "not_in", ("lead", "Customer")
    )


def test_R19_printer_adds_only_the_parentheses_precedence_needs() -> None:
    a, b, c = (
        _c("person.title", "eq", "a"),
        _c("person.title", "eq", "b"),
        _c("person.title", "eq", "c"),
    )
    assert (
        to_text(All((AnyOf((a, b)), c)))
        == "(person.title = a or person.title = b) and person.title = c"
    )
    assert (
        to_text(AnyOf((All((a, b)), c)))
        == "person.title = a and person.title = b or person.title = c"
    )
    assert to_text(Not(All((a, b)))) == "not (person.title = a and person.title = b)"
    assert to_text(All((Not(a), b))) == "not person.title = a and person.title = b"


# Values and quoting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("acme.com", "acme.com"),
        ("ceo@acme.com", "ceo@acme.com"),
        ("sales manager", '"sales manager"'),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("a,b", '"a,b"'),
        ("(x)", '"(x)"'),
        ("and", '"and"'),
        ("Contains", '"Contains"'),
        ("TRUE", '"TRUE"'),
        ("days", '"days"'),
        ("42", '"42"'),
        ("-1.5e3", '"-1.5e3"'),
        ("1.2.3", "1.2.3"),
        ("", '""'),
        ("zürich", '"zürich"'),
        (42, "42"),
        (-0.5, "-0.5"),
        (1e20, "1e+20"),
        (False, "false"),
        (datetime(2026, 1, 31, 9, 30), '"2026-01-31T09:30:00"'),
    ],
)
def test_values_print_bare_only_when_they_read_back_the_same(value: Scalar, printed: str) -> None:
    node = _c("person.title", "eq", value)
    assert to_text(node) == f"person.title = {printed}"
    expected = value.isoformat() if isinstance(value, datetime) else value
    assert repr(parse(to_text(node))) == repr(_c("person.title", "eq", expected))


def test_single_quotes_and_escapes_are_read() -> None:
    assert _condition(r"person.title = 'it\'s \"x\" \\ \n'").value == 'it\'s "x" \\ \\n'


def test_lists_print_in_parentheses() -> None:
    node = _c("person.title", "ends_with_any", ("a b", "x", 3, True))
    assert to_text(node) == 'person.title ends with any ("a b", x, 3, true)'


def test_printing_is_stable() -> None:
    text = "NOT ( person.title   CONTAINS 'vp' OR person.title = x )AND company.domain in(a.io)"
    once = to_text(parse(text))
    assert once == "not (person.title contains vp or person.title = x) and company.domain in (a.io)"
    assert to_text(parse(once)) == once


def test_printer_refuses_what_text_cannot_hold() -> None:
    with pytest.raises(InvalidFilter, match="unknown operator"):
        to_text(_c("person.title", "like", "x"))
    with pytest.raises(InvalidFilter, match="cannot take the value"):
        to_text(_c("company.domain", "in", "acme.com"))
    with pytest.raises(InvalidFilter, match="at least one"):
        to_text(All(()))
    with pytest.raises(InvalidFilter, match="cannot be written as a number"):
        to_text(_c("opportunity.amount", "gt", float("inf")))


# Errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("", "at column 1", "the filter is empty"),
        ("   ", "at column 1", "the filter is empty"),
        (
            "person.title foo sales",
            "at column 14",
            "expected an operator after 'person.title', found 'foo'",
        ),
        ('person.title = "sales', "at column 16", "unterminated string"),
        ("person.title = 'sales\\'", "at column 16", "unterminated string"),
        (
            "(person.title = a or person.title = b",
            "at column 38",
            "expected ')' to close the '(' at column 1, found the end of the filter",
        ),
        ("person.title = a)", "at column 17", "')' has no matching '('"),
        (
            "person.title = a person.title = b",
            "at column 18",
            "expected 'and', 'or' or the end of the filter, found 'person.title'",
        ),
        (
            "person.title =",
            "at column 15",
            "expected a value after 'person.title =', found the end",
        ),
        ("person.title = and x", "at column 16", "found 'and' (a keyword: quote it"),
        ("company.domain in acme.com", "at column 19", "expected a parenthesised list"),
        ("company.domain in ()", "at column 20", "expected a value in the list"),
        ("company.domain in (a b)", "at column 22", "expected ',' or ')' in the list, found 'b'"),
        ("company.domain in (a,)", "at column 22", "expected a value after ','"),
        ("person.created_at within last 1.5 days", "at column 31", "a whole number of days"),
        ("person.created_at within last 30", "at column 33", "expected 'days' after '30'"),
        ("person.title = a and", "at column 21", "expected a condition"),
        ("and person.title = a", "at column 1", "expected a condition"),
        ("person.title = a & b", "at column 18", "unexpected character '&'"),
        ("person.title = a and\n  b ~ c", "at line 2, column 5", "unexpected character '~'"),
    ],
)
def test_R34_errors_say_where_and_what(text: str, where: str, message: str) -> None:
    error = _raises(text)
    assert error.where == where
    assert message in error.reason


# Round trip property ----------------------------------------------------------------------

_FIELDS = [
    "person.email",
    "person.title",
    "company.domain",
    "company.fields.tier",
    "opportunity.amount",
]
_WORDS = ["and", "OR", "not", "in", "contains", "any", "is", "empty", "days", "True", "false"]
_scalars: st.SearchStrategy[Scalar] = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="abcxyz019_@+.-:/% ,()\"'\\", max_size=10),
    st.sampled_from(_WORDS),
    st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{1,3})?", fullmatch=True),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


def _value(op: Operator) -> st.SearchStrategy[Value]:
    if op.arg is Arg.NONE:
        return st.none()
    if op.arg is Arg.DAYS:
        return st.integers(min_value=-5, max_value=40_000)
    if op.arg is Arg.LIST:
        return st.lists(_scalars, min_size=1, max_size=4).map(tuple)
    return _scalars


_conditions = st.builds(
    lambda field, pair: Condition(field, pair[0].name, pair[1]),
    st.sampled_from(_FIELDS),
    st.sampled_from(list(OPERATORS.values())).flatmap(
        lambda op: _value(op).map(lambda value: (op, value))
    ),
)


def _spliced(kind: type[All] | type[AnyOf], items: list[Node]) -> Node:
    return kind(tuple(p for i in items for p in (i.items if isinstance(i, kind) else [i])))


_trees: st.SearchStrategy[Node] = st.recursive(
    _conditions,
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda items: _spliced(All, items)),
        st.lists(children, min_size=2, max_size=3).map(lambda items: _spliced(AnyOf, items)),
        children.map(Not),
    ),
    max_leaves=8,
)


@settings(max_examples=400)
@given(_trees)
def test_R19_round_trip_of_canonical_trees(node: Node) -> None:
    text = to_text(node)
    again = parse(text)
    assert again == node
    assert repr(again) == repr(node)  # 1 == True == 1.0 for `==`; the types must survive too
    assert to_text(again) == text


@pytest.mark.parametrize(
    "text",
    [
        "(" * 10_000 + 'person.email = "a@b.com"' + ")" * 10_000,
        "not " * 10_000 + 'person.email = "a@b.com"',
        "(not " * 5_000 + 'person.email = "a@b.com"' + ")" * 5_000,
        "(" * 10_000,
    ],
    ids=["parentheses", "nots", "both", "unclosed"],
)
def test_R34_a_filter_nested_ten_thousand_deep_is_an_invalid_filter_not_a_recursion_error(
    text: str,
) -> None:
    error = _raises(text)
    assert "nested deeper than" in str(error)


def test_R19_a_filter_nested_within_the_limit_still_parses() -> None:
    depth = 50
    node = parse("(" * depth + 'person.email = "a@b.com"' + ")" * depth)
    assert node == _c("person.email", "eq", "a@b.com")
    assert parse("not not " + 'person.email = "a@b.com"') == Not(
        Not(_c("person.email", "eq", "a@b.com"))
    )
