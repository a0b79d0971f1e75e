"""The append-only audit log (R35): every state change and every blocking decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t

_REFS = ("person_id", "company_id", "sequence_id", "enrollment_id", "email_id", "exclusion_id")


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    kind: str
    actor: str
    rule: str | None
    person_id: int | None
    sequence_id: int | None
    enrollment_id: int | None
    email_id: int | None
    exclusion_id: int | None
    detail: Mapping[str, Any]


def record(
    db: Connection,
    *,
    workspace_id: int,
    kind: str,
    actor: str,
    now: datetime,
    rule: str | None = None,
    detail: Mapping[str, Any] | None = None,
    **refs: int | None,
) -> None:
    unknown = set(refs) - set(_REFS)
    if unknown:
        raise TypeError(f"unknown event references: {sorted(unknown)}")
    db.execute(
        t.events.insert().values(
            workspace_id=workspace_id,
            at=now,
            kind=kind,
            actor=actor,
            rule=rule,
            detail=dict(detail or {}),
            **refs,
        )
    )


def record_from_select(
    db: Connection,
    *,
    workspace_id: int | None,
    now: datetime,
    select: sa.Select[Any],
    kind: str | None = None,
    actor: str | None = None,
    rule: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One event per row of `select`, whose columns are named after event references
    (`person_id`, `enrollment_id`, ...): set-based, whatever the number of rows.
    With `workspace_id=None` the select supplies a `workspace_id` column itself; a
    `kind`, `actor`, `rule` or `detail` left out (None) comes from the select's column of
    that name (for `rule` and `detail`, if it has one; see `detail_object`)."""
    own = {"workspace_id", "kind", "actor", "rule", "detail"}
    refs = [c.name for c in select.selected_columns if c.name not in own]
    unknown = set(refs) - set(_REFS)
    if unknown:
        raise TypeError(f"unknown event references: {sorted(unknown)}")
    inner = select.subquery()

    def given(name: str, value: Any, type_: Any) -> Any:
        if value is not None or name not in inner.c:
            return sa.literal(value, type_)
        return inner.c[name]

    if (kind is None and "kind" not in inner.c) or (actor is None and "actor" not in inner.c):
        raise TypeError("an event needs a kind and an actor, given or selected")
    default_detail = dict(detail or {}) if detail is not None or "detail" not in inner.c else None
    source = sa.select(
        given("workspace_id", workspace_id, sa.Integer).label("workspace_id"),
        sa.literal(now, sa.DateTime).label("at"),
        given("kind", kind, sa.String).label("kind"),
        given("actor", actor, sa.String).label("actor"),
        given("rule", rule, sa.String).label("rule"),
        given("detail", default_detail, sa.JSON).label("detail"),
        *(inner.c[name] for name in refs),
    )
    names = ["workspace_id", "at", "kind", "actor", "rule", "detail", *refs]
    db.execute(t.events.insert().from_select(names, source))


def detail_object(db: Connection, **values: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """An event's `detail` built per row from columns, as a select column named `detail`
    for `record_from_select`: a JSON object of the given names."""
    build = sa.func.json_build_object if db.dialect.name == "postgresql" else sa.func.json_object
    pairs = [part for name, value in values.items() for part in (sa.literal(name), value)]
    return build(*pairs).label("detail")


def history(db: Connection, *, workspace_id: int, person_id: int) -> list[Event]:
    """A person's events, oldest first (R35)."""
    e = t.events
    rows = db.execute(
        sa.select(e)
        .where(e.c.workspace_id == workspace_id, e.c.person_id == person_id)
        .order_by(e.c.at, e.c.id)
    ).mappings()
    return [
        Event(
            id=r["id"],
            at=r["at"],
            kind=r["kind"],
            actor=r["actor"],
            rule=r["rule"],
            person_id=r["person_id"],
            sequence_id=r["sequence_id"],
            enrollment_id=r["enrollment_id"],
            email_id=r["email_id"],
            exclusion_id=r["exclusion_id"],
            detail=r["detail"] or {},
        )
        for r in rows
    ]
