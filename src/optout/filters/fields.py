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
    name: str
    type: FieldType
    relation: Relation
    description: str
    # SQL: given the alias of the relation's table, the column expression.
    sql: Callable[[FromClause], ColumnElement[Any]]
    # Python: given a row of the relation (a mapping), the value.
    value: Callable[[Row], Any]
    custom: bool = field(default=False)


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
    relation: Relation, prefix: str, specs: Sequence[tuple[str, FieldType, str]]
) -> list[Field]:
    return [
        Field(f"{prefix}.{name}", type_, relation, description, _column(name), _key(name))
        for name, type_, description in specs
    ]


_T, _E, _D, _N, _B, _DT = (
    FieldType.TEXT,
    FieldType.EMAIL,
    FieldType.DOMAIN,
    FieldType.NUMBER,
    FieldType.BOOLEAN,
    FieldType.DATETIME,
)

_OPPORTUNITY_SPECS: list[tuple[str, FieldType, str]] = [
    ("name", _T, "opportunity name"),
    ("stage", _T, "opportunity stage, as in the CRM"),
    ("amount", _N, "opportunity amount"),
    ("is_closed", _B, "whether the opportunity is closed (won or lost)"),
    ("is_won", _B, "whether the opportunity is closed and won"),
    ("close_date", _DT, "expected or actual close date"),
]

_FIELDS: list[Field] = [
    *_plain(
        PERSON,
        "person",
        [
            ("email", _E, "the person's address, normalized"),
            ("email_domain", _D, "the domain of the person's address"),
            ("first_name", _T, "first name"),
            ("last_name", _T, "last name"),
            ("title", _T, "job title"),
            ("status", _T, "lead or contact status, as in the CRM"),
            ("created_at", _DT, "when the person was created here"),
            ("last_activity_at", _DT, "last activity from sources other than our sends"),
            ("last_activity_any_at", _DT, "last activity from every source, our sends included"),
            ("last_replied_at", _DT, "last reply from the person"),
            ("last_emailed_at", _DT, "last email we sent the person"),
        ],
    ),
    Field(
        "person.has_opportunity",
        _B,
        PERSON,
        "takes part (contact role) in an open opportunity",
        _has_open_opportunity,
        _key("has_opportunity"),
    ),
    *_plain(
        COMPANY,
        "company",
        [
            ("domain", _D, "the company's domain, normalized"),
            ("name", _T, "company name"),
            ("created_at", _DT, "when the company was created here"),
            ("last_activity_at", _DT, "last activity at the company from other sources"),
            ("last_activity_any_at", _DT, "last activity at the company, our sends included"),
            ("last_replied_at", _DT, "last reply from anyone at the company"),
        ],
    ),
    *_plain(OPPORTUNITY, "opportunity", _OPPORTUNITY_SPECS),
    *_plain(PERSON_OPPORTUNITY, "person.opportunity", _OPPORTUNITY_SPECS),
]

FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}

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
            return Field(name, _T, relation, f"custom field {key!r}", sql, value, custom=True)
    hint = did_you_mean(nearest_field(name, FIELDS))
    if hint:
        raise InvalidFilter(f"unknown field {name!r}{hint}", where=where)
    known = ", ".join(sorted(FIELDS))
    raise InvalidFilter(
        f"unknown field {name!r}; known fields: {known}, and custom fields "
        "person.fields.<name>, company.fields.<name>, opportunity.fields.<name>",
        where=where,
    )
