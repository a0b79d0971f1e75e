"""Opportunities (deals) on companies, and the people in them (contact roles, R20)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound
from optout.services.directory.companies import get as get_company
from optout.services.directory.custom_fields import clean_fields
from optout.services.directory.people import company_people
from optout.services.directory.people import get as get_person
from optout.services.monitoring import recheck_people

EDITABLE = ("name", "stage", "amount", "is_closed", "is_won", "close_date", "fields")


def create(
    db: Connection,
    *,
    workspace_id: int,
    company_id: int,
    now: datetime,
    name: str = "",
    stage: str = "",
    amount: float | None = None,
    is_closed: bool = False,
    is_won: bool = False,
    close_date: datetime | None = None,
    fields: Mapping[str, Any] | None = None,
    crm_id: str | None = None,
    actor: str = "optout",
) -> int:
    """Create a deal; company-level opportunity rules re-check its company at once (R14, R20)."""
    get_company(db, workspace_id=workspace_id, company_id=company_id)
    if is_won and not is_closed:
        raise InvalidInput("an opportunity that is won is closed")
    o = t.opportunities
    opportunity_id = int(
        db.execute(
            o.insert()
            .values(
                workspace_id=workspace_id,
                company_id=company_id,
                name=name,
                stage=stage,
                amount=amount,
                is_closed=is_closed,
                is_won=is_won,
                close_date=close_date,
                fields=clean_fields(fields),
                crm_id=crm_id,
                created_at=now,
                updated_at=now,
            )
            .returning(o.c.id)
        ).scalar_one()
    )
    _recheck(db, workspace_id=workspace_id, opportunity_id=opportunity_id, actor=actor, now=now)
    return opportunity_id


def update(
    db: Connection,
    *,
    workspace_id: int,
    opportunity_id: int,
    changes: Mapping[str, Any],
    now: datetime,
    actor: str = "optout",
) -> None:
    """Change a deal (a stage move, a close) and re-check the people it concerns (R14)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of an opportunity")
    o = t.opportunities
    values = dict(changes)
    if "fields" in values:
        values["fields"] = clean_fields(values["fields"])
    done = db.execute(
        o.update()
        .where(o.c.workspace_id == workspace_id, o.c.id == opportunity_id)
        .values(**values, updated_at=now)
    ).rowcount
    if not done:
        raise NotFound(f"no opportunity with id {opportunity_id}")
    _recheck(db, workspace_id=workspace_id, opportunity_id=opportunity_id, actor=actor, now=now)


def add_contact(
    db: Connection,
    *,
    workspace_id: int,
    opportunity_id: int,
    person_id: int,
    now: datetime,
    role: str = "",
    actor: str = "optout",
) -> None:
    """Link a person to a deal (contact role): `person.has_opportunity` rules see it (R20)."""
    get_person(db, workspace_id=workspace_id, person_id=person_id)
    o = t.opportunities
    if not db.scalar(
        sa.select(o.c.id).where(o.c.workspace_id == workspace_id, o.c.id == opportunity_id)
    ):
        raise NotFound(f"no opportunity with id {opportunity_id}")
    oc = t.opportunity_contacts
    linked = sa.select(oc.c.person_id).where(
        oc.c.opportunity_id == opportunity_id, oc.c.person_id == person_id
    )
    if db.scalar(linked) is not None:
        raise Conflict(f"person {person_id} is a contact of opportunity {opportunity_id} already")
    db.execute(
        t.opportunity_contacts.insert().values(
            opportunity_id=opportunity_id, person_id=person_id, role=role
        )
    )
    _recheck(db, workspace_id=workspace_id, opportunity_id=opportunity_id, actor=actor, now=now)


def _recheck(
    db: Connection, *, workspace_id: int, opportunity_id: int, actor: str, now: datetime
) -> None:
    """Everyone at the deal's company group and everyone linked to the deal."""
    o, oc = t.opportunities, t.opportunity_contacts
    company_id: int = db.execute(
        sa.select(o.c.company_id).where(o.c.id == opportunity_id)
    ).scalar_one()
    contacts = sa.select(oc.c.person_id).where(oc.c.opportunity_id == opportunity_id)
    touched = sa.union(company_people(workspace_id=workspace_id, company_id=company_id), contacts)
    recheck_people(
        db,
        workspace_id=workspace_id,
        people=sa.select(touched.subquery().c.id),
        actor=actor,
        now=now,
        cause="opportunity change",
    )
