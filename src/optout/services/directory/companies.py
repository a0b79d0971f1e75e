"""Companies (accounts) and the links between them (R12)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound, about_field
from optout.normalize import domain_label, normalize_domain
from optout.services.directory import association, people
from optout.services.directory.custom_fields import clean_fields, clean_text
from optout.services.directory.people import company_people
from optout.services.enforcement import Removal
from optout.services.monitoring import recheck_people


def create(
    db: Connection,
    *,
    workspace_id: int,
    domain: str,
    name: str = "",
    fields: Mapping[str, Any] | None = None,
    now: datetime,
    crm_id: str | None = None,
    actor: str = "optout",
) -> int:
    """Create a company; the unlinked people of its domain join it (`association`)."""
    with about_field("domain", "Company domain"):
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
            name=clean_text(name, what="company name") or canonical,
            fields=clean_fields(fields),
            crm_id=crm_id,
            created_at=now,
            updated_at=now,
        )
        .returning(c.c.id)
    ).scalar_one()
    db.execute(c.update().where(c.c.id == company_id).values(group_id=company_id))
    association.associate(
        db,
        workspace_id=workspace_id,
        companies=sa.select(c.c.id).where(c.c.id == company_id),
        now=now,
        actor=actor,
    )
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


EDITABLE = ("name", "fields", "crm_id", "last_replied_at", "last_activity_at")


def update(
    db: Connection,
    *,
    workspace_id: int,
    company_id: int,
    changes: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> None:
    """Change a company's data and re-check the active enrollments of everyone in its
    linked group in the same transaction (R14). The domain is its identity: not editable."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of a company")
    current = get(db, workspace_id=workspace_id, company_id=company_id)
    values = dict(changes)
    if "fields" in values:
        values["fields"] = {**current["fields"], **clean_fields(values["fields"])}
    c = t.companies
    db.execute(c.update().where(c.c.id == company_id).values(**values, updated_at=now))
    _recheck_group(db, workspace_id=workspace_id, company_id=company_id, actor=actor, now=now)


def _recheck_group(
    db: Connection, *, workspace_id: int, company_id: int, actor: str, now: datetime
) -> None:
    recheck_people(
        db,
        workspace_id=workspace_id,
        people=company_people(workspace_id=workspace_id, company_id=company_id),
        actor=actor,
        now=now,
        cause="company data change",
    )


def link(
    db: Connection,
    *,
    workspace_id: int,
    parent_id: int,
    child_id: int,
    now: datetime,
    actor: str = "optout",
) -> None:
    """Make `child` a subsidiary of `parent`: the two groups become one (R12), and a
    company-level exclusion on either side now reaches everyone in both."""
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
    _recheck_group(db, workspace_id=workspace_id, company_id=parent_id, actor=actor, now=now)


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


def assign_person(
    db: Connection,
    *,
    workspace_id: int,
    person_id: int,
    domain: str | None,
    actor: str,
    now: datetime,
) -> Removal:
    """A user sets a person's company by its domain (created when missing), or none at all
    (`domain` empty): recorded as a manual link that association never overrides. Their
    active enrollments are re-checked at once (R14)."""
    company_id: int | None = None
    if domain is not None and domain.strip():
        with about_field("domain", "Company domain"):
            canonical = normalize_domain(domain)
        try:
            company_id = get_id(db, workspace_id=workspace_id, domain=canonical)
        except NotFound:
            company_id = create(
                db, workspace_id=workspace_id, domain=canonical, now=now, actor=actor
            )
    return people.update(
        db,
        workspace_id=workspace_id,
        person_id=person_id,
        changes={"company_id": company_id},
        actor=actor,
        now=now,
    )
