"""Companies (accounts) and the links between them (R12)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound
from optout.filters.fields import CUSTOM_FIELD_NAME
from optout.normalize import domain_label, normalize_domain


def clean_fields(fields: Mapping[str, Any] | None) -> dict[str, str]:
    """Custom fields as text under valid names (R34)."""
    out: dict[str, str] = {}
    for key, value in (fields or {}).items():
        if not CUSTOM_FIELD_NAME.match(key):
            raise InvalidInput(
                f"custom field name {key!r}: use lowercase letters, digits and underscores"
            )
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"custom field {key!r} takes text, a number or a boolean")
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def create(
    db: Connection,
    *,
    workspace_id: int,
    domain: str,
    name: str = "",
    fields: Mapping[str, Any] | None = None,
    now: datetime,
    crm_id: str | None = None,
) -> int:
    canonical = normalize_domain(domain)
    c = t.companies
    if db.scalar(
        sa.select(c.c.id).where(c.c.workspace_id == workspace_id, c.c.domain == canonical)
    ):
        raise Conflict(f"a company with domain {canonical} exists already")
    company_id = db.execute(
        c.insert()
        .values(
            workspace_id=workspace_id,
            domain=canonical,
            domain_label=domain_label(canonical),
            name=name or canonical,
            fields=clean_fields(fields),
            crm_id=crm_id,
            created_at=now,
            updated_at=now,
        )
        .returning(c.c.id)
    ).scalar_one()
    db.execute(c.update().where(c.c.id == company_id).values(group_id=company_id))
    return int(company_id)


def get_id(db: Connection, *, workspace_id: int, domain: str) -> int:
    canonical = normalize_domain(domain)
    c = t.companies
    found = db.scalar(
        sa.select(c.c.id).where(c.c.workspace_id == workspace_id, c.c.domain == canonical)
    )
    if found is None:
        raise NotFound(f"no company with domain {canonical}")
    return int(found)


def get(db: Connection, *, workspace_id: int, company_id: int) -> Mapping[str, Any]:
    c = t.companies
    row = (
        db.execute(sa.select(c).where(c.c.workspace_id == workspace_id, c.c.id == company_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no company with id {company_id}")
    return dict(row)


def link(
    db: Connection, *, workspace_id: int, parent_id: int, child_id: int, now: datetime
) -> None:
    """Make `child` a subsidiary of `parent`: the two groups become one (R12)."""
    parent = get(db, workspace_id=workspace_id, company_id=parent_id)
    child = get(db, workspace_id=workspace_id, company_id=child_id)
    if child["parent_id"] is not None:
        raise Conflict(f"{child['domain']} is already linked to a parent; unlink it first")
    if parent["group_id"] == child["group_id"]:
        raise Conflict(f"{parent['domain']} and {child['domain']} are already linked")
    c = t.companies
    db.execute(c.update().where(c.c.id == child_id).values(parent_id=parent_id, updated_at=now))
    db.execute(
        c.update()
        .where(c.c.workspace_id == workspace_id, c.c.group_id == child["group_id"])
        .values(group_id=parent["group_id"])
    )


def unlink(db: Connection, *, workspace_id: int, child_id: int, now: datetime) -> None:
    """Detach `child` (and its own subsidiaries) from its parent."""
    child = get(db, workspace_id=workspace_id, company_id=child_id)
    if child["parent_id"] is None:
        raise Conflict(f"{child['domain']} has no parent")
    c = t.companies
    subtree = sa.select(c.c.id).where(c.c.id == child_id).cte("subtree", recursive=True)
    below = c.alias()
    subtree = subtree.union_all(sa.select(below.c.id).where(below.c.parent_id == subtree.c.id))
    db.execute(c.update().where(c.c.id == child_id).values(parent_id=None, updated_at=now))
    db.execute(c.update().where(c.c.id.in_(sa.select(subtree.c.id))).values(group_id=child_id))
