"""The field registry: every field a filter may name, with its type, its relation
and how to read it in SQL and in Python.

A field belongs to a relation. `person` and `company` are scalar (one row per
subject); `opportunity` (the company's deals) and `person_opportunity` (deals the
person takes part in through contact roles) are collections: a condition on them
means "there is such an opportunity", and conditions on the same collection joined
by `and` must hold for the same opportunity.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from optout.db import tables as t
from optout.errors import InvalidFilter
from optout.filters.suggest import did_you_mean, nearest_field


class FieldType(StrEnum):
    TEXT = "text"
    EMAIL = "email"
    DOMAIN = "domain"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"


class Level(StrEnum):
    """What a filter selects: companies (company-level exclusions) or people."""

    COMPANY = "company"
    PEOPLE = "people"


Row = Mapping[str, Any]


@dataclass(frozen=True)
class Relation:
    name: str
    levels: frozenset[Level]
    collection: bool
    table: sa.Table | None = None


PERSON = Relation("person", frozenset({Level.PEOPLE}), collection=False)
COMPANY = Relation("company", frozenset({Level.PEOPLE, Level.COMPANY}), collection=False)
OPPORTUNITY = Relation(
    "opportunity", frozenset({Level.COMPANY}), collection=True, table=t.opportunities
)
PERSON_OPPORTUNITY = Relation(
    "person_opportunity", frozenset({Level.PEOPLE}), collection=True, table=t.opportunities
)


@dataclass(frozen=True)
class Field:
    name: str  # how a filter's text names it: `person.last_activity_any_at`
    type: FieldType
    relation: Relation
    description: str
    # SQL: given the alias of the relation's table, the column expression.
    sql: Callable[[FromClause], ColumnElement[Any]]
    # Python: given a row of the relation (a mapping), the value.
    value: Callable[[Row], Any]
    custom: bool = field(default=False)
    label: str = ""  # how pages name it: "Last activity (any)"


def _column(name: str) -> Callable[[FromClause], ColumnElement[Any]]:
    return lambda alias: alias.c[name]


def _key(name: str) -> Callable[[Row], Any]:
    return lambda row: row.get(name)


def _custom(name: str) -> tuple[Callable[[FromClause], ColumnElement[Any]], Callable[[Row], Any]]:
    def sql(alias: FromClause) -> ColumnElement[Any]:
        column: ColumnElement[Any] = alias.c.fields[name].as_string()
        return column

    def value(row: Row) -> Any:
        fields = row.get("fields") or {}
        raw = fields.get(name)
        return None if raw is None else str(raw)

    return sql, value


def _has_open_opportunity(alias: FromClause) -> ColumnElement[Any]:
    link, opp = t.opportunity_contacts.alias(), t.opportunities.alias()
    return sa.exists(
        sa.select(1)
        .select_from(link.join(opp, opp.c.id == link.c.opportunity_id))
        .where(link.c.person_id == alias.c.id, opp.c.is_closed.is_(False))
    )


def _plain(
    relation: Relation,
    prefix: str,
    specs: Sequence[tuple[str, FieldType, str, str]],
    *,
    label_prefix: str = "",
) -> list[Field]:
    return [
        Field(
            f"{prefix}.{name}",
            type_,
            relation,
            description,
            _column(name),
            _key(name),
            label=f"{label_prefix}{label}",
        )
        for name, type_, label, description in specs
    ]


def _capitalized(
    specs: Sequence[tuple[str, FieldType, str, str]],
) -> list[tuple[str, FieldType, str, str]]:
    return [(name, type_, label.capitalize(), about) for name, type_, label, about in specs]


_T, _E, _D, _N, _B, _DT = (
    FieldType.TEXT,
    FieldType.EMAIL,
    FieldType.DOMAIN,
    FieldType.NUMBER,
    FieldType.BOOLEAN,
    FieldType.DATETIME,
)

# name, type, label, description
_OPPORTUNITY_SPECS: list[tuple[str, FieldType, str, str]] = [
    ("name", _T, "opportunity name", "opportunity name"),
    ("stage", _T, "opportunity stage", "opportunity stage, as in the CRM"),
    ("amount", _N, "opportunity amount", "opportunity amount"),
    ("is_closed", _B, "opportunity closed", "whether the opportunity is closed (won or lost)"),
    ("is_won", _B, "opportunity won", "whether the opportunity is closed and won"),
    ("close_date", _DT, "opportunity close date", "expected or actual close date"),
]

_FIELDS: list[Field] = [
    *_plain(
        PERSON,
        "person",
        [
            ("email", _E, "Email", "the person's address, normalized"),
            ("email_domain", _D, "Email domain", "the domain of the person's address"),
            ("first_name", _T, "First name", "first name"),
            ("last_name", _T, "Last name", "last name"),
            ("title", _T, "Job title", "job title"),
            ("status", _T, "Lead status", "lead or contact status, as in the CRM"),
            ("created_at", _DT, "Person added", "when the person was created here"),
            (
                "last_activity_at",
                _DT,
                "Last activity",
                "last activity from sources other than our sends",
            ),
            (
                "last_activity_any_at",
                _DT,
                "Last activity (any)",
                "last activity from every source, our sends included",
            ),
            ("last_replied_at", _DT, "Last reply", "last reply from the person"),
            ("last_emailed_at", _DT, "Last emailed", "last email we sent the person"),
        ],
    ),
    Field(
        "person.has_opportunity",
        _B,
        PERSON,
        "takes part (contact role) in an open opportunity",
        _has_open_opportunity,
        _key("has_opportunity"),
        label="In an open opportunity",
    ),
    *_plain(
        COMPANY,
        "company",
        [
            ("domain", _D, "Company domain", "the company's domain, normalized"),
            ("name", _T, "Company name", "company name"),
            ("created_at", _DT, "Company added", "when the company was created here"),
            (
                "last_activity_at",
                _DT,
                "Company last activity",
                "last activity at the company from other sources",
            ),
            (
                "last_activity_any_at",
                _DT,
                "Company last activity (any)",
                "last activity at the company, our sends included",
            ),
            ("last_replied_at", _DT, "Company last reply", "last reply from anyone at the company"),
        ],
    ),
    *_plain(OPPORTUNITY, "opportunity", _capitalized(_OPPORTUNITY_SPECS)),
    *_plain(PERSON_OPPORTUNITY, "person.opportunity", _OPPORTUNITY_SPECS, label_prefix="Person's "),
]

FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}

# How pages name a custom field of each relation: "Lead source (custom)" for
# `person.fields.lead_source`.
_CUSTOM_LABEL_PREFIXES = {
    "person": "",
    "company": "Company ",
    "opportunity": "Opportunity ",
    "person_opportunity": "Person's opportunity ",
}


def label(name: str) -> str:
    """How pages name the field a filter calls `name`: its label, or for a name that is
    no field, the name itself (a page shows what it was given rather than fail)."""
    try:
        return lookup(name).label
    except InvalidFilter:
        return name


# `<relation prefix>.fields.<name>`: a custom field of that relation, compared as text.
_CUSTOM_PREFIXES: dict[str, Relation] = {
    "person.opportunity": PERSON_OPPORTUNITY,
    "person": PERSON,
    "company": COMPANY,
    "opportunity": OPPORTUNITY,
}
CUSTOM_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def lookup(name: str, *, where: str = "") -> Field:
    """The field called `name`, or InvalidFilter naming the close alternatives."""
    if name in FIELDS:
        return FIELDS[name]
    return _lookup(name, where)


@lru_cache(maxsize=4096)
def _lookup(name: str, where: str) -> Field:
    for prefix, relation in _CUSTOM_PREFIXES.items():
        marker = f"{prefix}.fields."
        if name.startswith(marker):
            key = name[len(marker) :]
            if not CUSTOM_FIELD_NAME.match(key):
                raise InvalidFilter(
                    f"custom field name {key!r} must be lowercase letters, digits and "
                    "underscores, starting with a letter",
                    where=where,
                )
            sql, value = _custom(key)
            words = key.replace("_", " ")
            shown = f"{_CUSTOM_LABEL_PREFIXES[relation.name]}{words}".capitalize() + " (custom)"
            return Field(
                name, _T, relation, f"custom field {key!r}", sql, value, custom=True, label=shown
            )
    raise InvalidFilter(f"unknown field {name!r}{_known_fields_hint(name)}", where=where)


def _known_fields_hint(name: str) -> str:
    """The field meant, by its label, when one is close to `name`; else every field a
    filter can use, by label, as the field list of the pages names them."""
    near = nearest_field(name, FIELDS)
    if near is not None:
        return did_you_mean(FIELDS[near].label)
    known = ", ".join(field.label for field in _FIELDS)
    return (
        f"; the fields a filter can use are {known}, and the custom fields of people, "
        "companies and opportunities"
    )
