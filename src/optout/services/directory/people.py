"""People (contacts). Identity for suppression is the normalized address (R1)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput, NotFound
from optout.normalize import normalize_email
from optout.services.directory.custom_fields import clean_fields, clean_text

if TYPE_CHECKING:  # finding a person (what `optout explain` does) needs none of them
    from optout.services.enforcement import Removal

EDITABLE = (
    "first_name",
    "last_name",
    "title",
    "status",
    "company_id",
    "fields",
    "crm_id",
    "time_zone",
)


def create(
    db: Connection,
    *,
    workspace_id: int,
    email: str,
    now: datetime,
    first_name: str = "",
    last_name: str = "",
    title: str = "",
    status: str = "",
    company_id: int | None = None,
    fields: Mapping[str, Any] | None = None,
    crm_id: str | None = None,
    company_link_source: str | None = None,
    actor: str = "optout",
    time_zone: str | None = None,
) -> int:
    """Create a person; without a company, they get the company of their email domain
    (`association`). `company_link_source` says how `company_id` was chosen (default: by
    hand, `association.MANUAL`). `time_zone` is an IANA zone name (R38)."""
    from optout.services.directory import association  # finding a person needs none of it

    address = normalize_email(email)
    if company_id is not None:
        _check_company(db, workspace_id=workspace_id, company_id=company_id)
    p = t.people
    person_id = db.execute(
        p.insert()
        .values(
            workspace_id=workspace_id,
            email=address.address,
            email_domain=address.domain,
            first_name=clean_text(first_name, what="first name"),
            last_name=clean_text(last_name, what="last name"),
            title=clean_text(title, what="title"),
            status=clean_text(status, what="status"),
            company_id=company_id,
            company_link_source=(
                (company_link_source or association.MANUAL) if company_id is not None else None
            ),
            fields=clean_fields(fields),
            crm_id=crm_id,
            created_at=now,
            updated_at=now,
            time_zone=_zone_name(time_zone) if time_zone else None,
        )
        .returning(p.c.id)
    ).scalar_one()
    if company_id is None:
        association.associate(
            db,
            workspace_id=workspace_id,
            people=sa.select(p.c.id).where(p.c.id == person_id),
            now=now,
            actor=actor,
        )
    return int(person_id)


def _zone_name(raw: str) -> str:
    from optout.mail.windows import zone_name

    return zone_name(raw)


def _check_company(db: Connection, *, workspace_id: int, company_id: int) -> None:
    """A person can only belong to a company of their own workspace."""
    c = t.companies
    if (
        db.scalar(sa.select(c.c.id).where(c.c.workspace_id == workspace_id, c.c.id == company_id))
        is None
    ):
        raise NotFound(f"no company with id {company_id}")


def ids_by_email(db: Connection, *, workspace_id: int, email: str) -> list[int]:
    """Every person with this address (CRM duplicates included), oldest first."""
    address = normalize_email(email).address
    p = t.people
    return list(
        db.scalars(
            sa.select(p.c.id)
            .where(p.c.workspace_id == workspace_id, p.c.email == address)
            .order_by(p.c.id)
        )
    )


def id_by_email(db: Connection, *, workspace_id: int, email: str) -> int:
    ids = ids_by_email(db, workspace_id=workspace_id, email=email)
    if not ids:
        raise NotFound(f"no person with address {normalize_email(email).address}")
    return ids[0]


def get(db: Connection, *, workspace_id: int, person_id: int) -> Mapping[str, Any]:
    p = t.people
    row = (
        db.execute(sa.select(p).where(p.c.workspace_id == workspace_id, p.c.id == person_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no person with id {person_id}")
    return dict(row)


def update(
    db: Connection,
    *,
    workspace_id: int,
    person_id: int,
    changes: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> Removal:
    """Change a person's data (custom fields given are merged into the existing ones) and
    re-check their active enrollments in the same transaction (R14)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of a person")
    current = get(db, workspace_id=workspace_id, person_id=person_id)
    values = dict(changes)
    if values.get("company_id") is not None:
        _check_company(db, workspace_id=workspace_id, company_id=values["company_id"])
    if "company_id" in values:
        from optout.services.directory import association

        # A user's choice, kept even when it is "no company" (association leaves it alone).
        values["company_link_source"] = association.MANUAL
    if "fields" in values:
        values["fields"] = {**current["fields"], **clean_fields(values["fields"])}
    if "time_zone" in values:
        values["time_zone"] = _zone_name(values["time_zone"]) if values["time_zone"] else None
    for key in ("first_name", "last_name", "title", "status"):
        if key in values:
            values[key] = clean_text(str(values[key] or ""), what=key.replace("_", " "))
    p = t.people
    db.execute(p.update().where(p.c.id == person_id).values(**values, updated_at=now))
    from optout.services.monitoring import recheck_people

    return recheck_people(
        db, workspace_id=workspace_id, people=[person_id], actor=actor, now=now, cause="data change"
    )


def record_activity(
    db: Connection,
    *,
    workspace_id: int,
    person_id: int,
    kind: str,
    source: str,
    now: datetime,
    actor: str = "optout",
    occurred_at: datetime | None = None,
    sequence_id: int | None = None,
) -> Removal:
    """Record one activity with its source (R21); see `activities.record`."""
    from optout.services import activities

    return activities.record(
        db,
        workspace_id=workspace_id,
        activities=[activities.Activity(person_id, kind, source, occurred_at or now, sequence_id)],
        now=now,
        actor=actor,
    )


def company_people(*, workspace_id: int, company_id: int) -> sa.Select[Any]:
    """Ids of everyone at the company or at a company linked to it (R12)."""
    p, c, own = t.people, t.companies.alias(), t.companies.alias()
    return (
        sa.select(p.c.id)
        .join(c, c.c.id == p.c.company_id)
        .where(
            p.c.workspace_id == workspace_id,
            c.c.group_id
            == sa.select(own.c.group_id).where(own.c.id == company_id).scalar_subquery(),
        )
    )
