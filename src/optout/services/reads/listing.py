"""Paged, filtered reads of a workspace's rows, for the JSON API and the pages.

Read-only and scoped by the workspace in every query; no business rule lives
here. Each function returns one page of plain rows and the total that matches,
so an entry point can render a page and a link to the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput, NotFound
from optout.filters import Level
from optout.filters.operators import Context
from optout.filters.sql import compile_sql, people_scope
from optout.normalize import normalize_domain, normalize_email
from optout.services.filters import FilterInput, read_filter


@dataclass(frozen=True)
class Paged:
    rows: list[dict[str, Any]]
    total: int


def _paged(
    db: Connection,
    query: sa.Select[Any],
    *,
    order_by: Iterable[Any],
    limit: int,
    offset: int,
) -> Paged:
    total = db.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))
    rows = db.execute(query.order_by(*order_by).limit(limit).offset(offset)).mappings()
    return Paged([dict(r) for r in rows], int(total or 0))


def _people_query(workspace_id: int) -> sa.Select[Any]:
    """People with their company's domain; the rows carry whether the address opted out,
    bounced or complained (`tables.people`: kept from the suppressions)."""
    p, c = t.people, t.companies
    return (
        sa.select(p, c.c.domain.label("company_domain"))
        .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
        .where(p.c.workspace_id == workspace_id)
    )


def people(
    db: Connection,
    *,
    workspace_id: int,
    limit: int,
    offset: int,
    email: str | None = None,
    domain: str | None = None,
    status: str | None = None,
    company_id: int | None = None,
) -> Paged:
    """People with their company's domain and whether their address is opted out, bounced
    or sent a spam complaint; `email` and `domain` (the address's domain) are compared
    normalized."""
    p = t.people
    query = _people_query(workspace_id)
    if email is not None:
        query = query.where(p.c.email == normalize_email(email).address)
    if domain is not None:
        query = query.where(p.c.email_domain == normalize_domain(domain))
    if status is not None:
        query = query.where(p.c.status == status)
    if company_id is not None:
        query = query.where(p.c.company_id == company_id)
    return _paged(db, query, order_by=[p.c.id], limit=limit, offset=offset)


def person(db: Connection, *, workspace_id: int, person_id: int) -> dict[str, Any]:
    row = (
        db.execute(_people_query(workspace_id).where(t.people.c.id == person_id)).mappings().first()
    )
    if row is None:
        raise NotFound(f"no person with id {person_id}")
    return dict(row)


def missing_people(db: Connection, *, workspace_id: int, ids: Iterable[int]) -> list[int]:
    """Those of `ids` that are not people of the workspace."""
    wanted = sorted(set(ids))
    p = t.people
    found = set(
        db.scalars(sa.select(p.c.id).where(p.c.workspace_id == workspace_id, p.c.id.in_(wanted)))
    )
    return [i for i in wanted if i not in found]


def matching_people(*, workspace_id: int, filter: FilterInput, now: datetime) -> sa.Select[Any]:
    """Ids of the workspace's people a people-level filter matches (InvalidFilter if bad)."""
    node = read_filter(filter, Level.PEOPLE)
    query, scope = people_scope()
    return query.where(
        t.people.c.workspace_id == workspace_id,
        compile_sql(node, scope=scope, ctx=Context(now=now)),
    )


def companies(
    db: Connection,
    *,
    workspace_id: int,
    limit: int,
    offset: int,
    domain: str | None = None,
    group_id: int | None = None,
) -> Paged:
    c = t.companies
    query = sa.select(c).where(c.c.workspace_id == workspace_id)
    if domain is not None:
        query = query.where(c.c.domain == normalize_domain(domain))
    if group_id is not None:
        query = query.where(c.c.group_id == group_id)
    return _paged(db, query, order_by=[c.c.id], limit=limit, offset=offset)


def opportunities(
    db: Connection,
    *,
    workspace_id: int,
    limit: int,
    offset: int,
    company_id: int | None = None,
    is_closed: bool | None = None,
) -> Paged:
    o = t.opportunities
    query = sa.select(o).where(o.c.workspace_id == workspace_id)
    if company_id is not None:
        query = query.where(o.c.company_id == company_id)
    if is_closed is not None:
        query = query.where(o.c.is_closed.is_(is_closed))
    return _paged(db, query, order_by=[o.c.id], limit=limit, offset=offset)


def opportunity(db: Connection, *, workspace_id: int, opportunity_id: int) -> dict[str, Any]:
    o, oc = t.opportunities, t.opportunity_contacts
    row = (
        db.execute(sa.select(o).where(o.c.workspace_id == workspace_id, o.c.id == opportunity_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no opportunity with id {opportunity_id}")
    contacts = db.execute(
        sa.select(oc.c.person_id, oc.c.role)
        .where(oc.c.opportunity_id == opportunity_id)
        .order_by(oc.c.person_id)
    ).mappings()
    return {**dict(row), "contacts": [dict(c) for c in contacts]}


def rows(db: Connection, table: sa.Table, *, workspace_id: int, limit: int, offset: int) -> Paged:
    """A page of a named configuration table (exclusions, personas, rulesets, ...)."""
    query = sa.select(table).where(table.c.workspace_id == workspace_id)
    return _paged(db, query, order_by=[table.c.id], limit=limit, offset=offset)


def names_by_id(
    db: Connection, table: sa.Table, *, workspace_id: int, ids: Iterable[int | None]
) -> dict[int, str]:
    """`{id: name}` for the given ids of a named table (sequences, exclusions, audiences)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    found = db.execute(
        sa.select(table.c.id, table.c.name).where(
            table.c.workspace_id == workspace_id, table.c.id.in_(wanted)
        )
    )
    return {int(row.id): str(row.name) for row in found}


def sequences_fed(db: Connection, *, workspace_id: int, audience_id: int) -> list[str]:
    """Names of the sequences an audience feeds."""
    s = t.sequences
    return list(
        db.scalars(
            sa.select(s.c.name)
            .where(s.c.workspace_id == workspace_id, s.c.audience_id == audience_id)
            .order_by(s.c.name)
        )
    )


ENROLLMENT_COLUMNS = (
    "id",
    "sequence_id",
    "person_id",
    "status",
    "source",
    "audience_id",
    "next_position",
    "next_run_at",
    "enrolled_at",
    "enrolled_by",
    "ended_at",
    "end_reason",
)


def _enrollments_query(workspace_id: int) -> sa.Select[Any]:
    e, p, s = t.enrollments, t.people, t.sequences
    return (
        sa.select(
            *(e.c[name] for name in ENROLLMENT_COLUMNS),
            p.c.email,
            s.c.name.label("sequence"),
        )
        .join(p, p.c.id == e.c.person_id)
        .join(s, s.c.id == e.c.sequence_id)
        .where(e.c.workspace_id == workspace_id)
    )


def enrollments(
    db: Connection,
    *,
    workspace_id: int,
    limit: int,
    offset: int,
    sequence_id: int | None = None,
    statuses: Iterable[str] = (),
    person_id: int | None = None,
) -> Paged:
    e = t.enrollments
    query = _enrollments_query(workspace_id)
    wanted = list(statuses)
    unknown = sorted(set(wanted) - set(t.ENROLLMENT_STATUSES))
    if unknown:
        raise InvalidInput(
            f"unknown enrollment status {', '.join(map(repr, unknown))}; "
            f"use {', '.join(t.ENROLLMENT_STATUSES)}"
        )
    if sequence_id is not None:
        query = query.where(e.c.sequence_id == sequence_id)
    if wanted:
        query = query.where(e.c.status.in_(wanted))
    if person_id is not None:
        query = query.where(e.c.person_id == person_id)
    return _paged(db, query, order_by=[e.c.id], limit=limit, offset=offset)


def enrollment(db: Connection, *, workspace_id: int, enrollment_id: int) -> dict[str, Any]:
    query = _enrollments_query(workspace_id).where(t.enrollments.c.id == enrollment_id)
    row = db.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no enrollment with id {enrollment_id}")
    return dict(row)


SUPPRESSION_KINDS = t.SUPPRESSION_KINDS


def suppressions(
    db: Connection,
    *,
    workspace_id: int,
    limit: int,
    offset: int,
    email: str | None = None,
    kind: str | None = None,
) -> Paged:
    """Opted-out, bounced and complained addresses, newest first."""
    s = t.suppressions
    query = sa.select(s.c.email, s.c.kind, s.c.since, s.c.actor, s.c.channel, s.c.reason).where(
        s.c.workspace_id == workspace_id
    )
    if email is not None:
        query = query.where(s.c.email == normalize_email(email).address)
    if kind is not None:
        if kind not in SUPPRESSION_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(SUPPRESSION_KINDS)}")
        query = query.where(s.c.kind == kind)
    return _paged(db, query, order_by=[s.c.since.desc(), s.c.id.desc()], limit=limit, offset=offset)
