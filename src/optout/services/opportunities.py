"""Opportunities (deals) on companies, and the people in them (contact roles, R20)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput, NotFound
from optout.services.companies import clean_fields
from optout.services.companies import get as get_company
from optout.services.people import get as get_person

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
) -> int:
    get_company(db, workspace_id=workspace_id, company_id=company_id)
    if is_won and not is_closed:
        raise InvalidInput("an opportunity that is won is closed")
    o = t.opportunities
    return int(
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


def update(
    db: Connection,
    *,
    workspace_id: int,
    opportunity_id: int,
    changes: Mapping[str, Any],
    now: datetime,
) -> None:
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


def add_contact(
    db: Connection, *, workspace_id: int, opportunity_id: int, person_id: int, role: str = ""
) -> None:
    get_person(db, workspace_id=workspace_id, person_id=person_id)
    o = t.opportunities
    if not db.scalar(
        sa.select(o.c.id).where(o.c.workspace_id == workspace_id, o.c.id == opportunity_id)
    ):
        raise NotFound(f"no opportunity with id {opportunity_id}")
    db.execute(
        t.opportunity_contacts.insert().values(
            opportunity_id=opportunity_id, person_id=person_id, role=role
        )
    )
