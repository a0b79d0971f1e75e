"""The long lists of the pages, a page at a time in a few sort orders (`services.reads.keyset`):
people, companies, a company's people, exclusions and a sequence's enrollments. Read-only
and scoped by the workspace in every query."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services.reads.keyset import DEFAULT_PAGE_SIZE, Page, Sort, choose, fetch
from optout.services.reads.search import person_name_key

_p, _c, _x, _e = t.people, t.companies, t.exclusions, t.enrollments

PEOPLE_SORTS = (
    Sort("newest", "Newest first", _p.c.id, descending=True),
    Sort("email", "Email", _p.c.email),
    Sort("name", "Name", person_name_key(_p)),
)

COMPANY_SORTS = (
    Sort("name", "Name", sa.func.lower(_c.c.name)),
    Sort("newest", "Newest first", _c.c.id, descending=True),
    Sort("domain", "Domain", sa.func.coalesce(_c.c.domain, "")),
)

EXCLUSION_SORTS = (
    Sort("name", "Name", _x.c.name),
    Sort("newest", "Newest first", _x.c.id, descending=True),
)

ENROLLMENT_SORTS = (
    Sort("newest", "Newest first", _e.c.id, descending=True),
    Sort("email", "Email", _p.c.email),
)


def people(
    db: Connection,
    *,
    workspace_id: int,
    sort: str = "",
    after: str = "",
    before: str = "",
    limit: int = DEFAULT_PAGE_SIZE,
    company_id: int | None = None,
) -> Page:
    """People with their company's domain; all of them or a company's."""
    query = (
        sa.select(
            _p.c.id,
            _p.c.email,
            _p.c.first_name,
            _p.c.last_name,
            _p.c.title,
            _c.c.domain.label("company"),
        )
        .select_from(_p.outerjoin(_c, _c.c.id == _p.c.company_id))
        .where(_p.c.workspace_id == workspace_id)
    )
    if company_id is not None:
        query = query.where(_p.c.company_id == company_id)
    return fetch(
        db,
        query,
        sort=choose(PEOPLE_SORTS, sort),
        id_column=_p.c.id,
        after=after,
        before=before,
        limit=limit,
    )


def companies(
    db: Connection,
    *,
    workspace_id: int,
    sort: str = "",
    after: str = "",
    before: str = "",
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page:
    query = sa.select(_c.c.id, _c.c.domain, _c.c.name, _c.c.parent_id, _c.c.created_at).where(
        _c.c.workspace_id == workspace_id
    )
    return fetch(
        db,
        query,
        sort=choose(COMPANY_SORTS, sort),
        id_column=_c.c.id,
        after=after,
        before=before,
        limit=limit,
    )


def exclusions(
    db: Connection,
    *,
    workspace_id: int,
    archived: bool = False,
    sort: str = "",
    after: str = "",
    before: str = "",
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page:
    """The workspace's exclusions in use, or (`archived`) the archived ones."""
    query = sa.select(_x).where(
        _x.c.workspace_id == workspace_id,
        _x.c.archived_at.is_not(None) if archived else _x.c.archived_at.is_(None),
    )
    return fetch(
        db,
        query,
        sort=choose(EXCLUSION_SORTS, sort),
        id_column=_x.c.id,
        after=after,
        before=before,
        limit=limit,
    )


def enrollments(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    statuses: list[str],
    sort: str = "",
    after: str = "",
    before: str = "",
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page:
    """A sequence's enrollments in `statuses`, with the person and their company."""
    unknown = sorted(set(statuses) - set(t.ENROLLMENT_STATUSES))
    if unknown:
        raise InvalidInput(f"unknown enrollment status {', '.join(map(repr, unknown))}")
    query = (
        sa.select(
            _e.c.id,
            _e.c.person_id,
            _e.c.status,
            _e.c.source,
            _e.c.enrolled_at,
            _e.c.ended_at,
            _e.c.end_reason,
            _e.c.next_run_at,
            _p.c.email,
            _p.c.first_name,
            _p.c.last_name,
            _c.c.domain.label("company"),
        )
        .join(_p, _p.c.id == _e.c.person_id)
        .outerjoin(_c, _c.c.id == _p.c.company_id)
        .where(
            _e.c.workspace_id == workspace_id,
            _e.c.sequence_id == sequence_id,
            _e.c.status.in_(statuses),
        )
    )
    return fetch(
        db,
        query,
        sort=choose(ENROLLMENT_SORTS, sort),
        id_column=_e.c.id,
        after=after,
        before=before,
        limit=limit,
    )
