"""Opportunities (deals) and their contact roles (R20): every change re-checks the people
it concerns in the same transaction (R14)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from optout.clock import as_stored, utcnow
from optout.services.directory import opportunities
from optout.services.reads import listing
from optout.web.api.common import BodyId, Input, Page, Paging, PathId, QueryId, page, read
from optout.web.api.common import transaction as tx
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/opportunities", tags=["opportunities"])

Amount = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]
Fields = Annotated[
    dict[str, str | int | float | bool | None],
    Field(description="Custom fields by lowercase name; a null value leaves one out."),
]
Short = Annotated[str, Field(max_length=100)]
Long = Annotated[str, Field(max_length=300)]


class ContactOut(BaseModel):
    person_id: int
    role: str


class OpportunityOut(BaseModel):
    id: int
    company_id: int
    name: str
    stage: str
    amount: float | None
    is_closed: bool
    is_won: bool
    close_date: datetime | None
    fields: dict[str, Any]
    crm_id: str | None
    created_at: datetime
    updated_at: datetime
    contacts: list[ContactOut] | None = Field(None, description="Only on a single opportunity.")


class OpportunityIn(Input):
    company_id: BodyId
    name: Long = ""
    stage: Short = ""
    amount: Amount | None = None
    is_closed: bool = False
    is_won: bool = False
    close_date: datetime | None = None
    fields: Fields = Field(default_factory=dict)
    crm_id: Annotated[str, Field(max_length=64)] | None = None


class OpportunityChange(Input):
    """Only the fields given change (a stage move, a close)."""

    name: Long | None = None
    stage: Short | None = None
    amount: Amount | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    close_date: datetime | None = None
    fields: Fields | None = None


class ContactIn(Input):
    person_id: BodyId
    role: Short = ""


@router.get("", response_model=Page[OpportunityOut], summary="List opportunities")
def list_opportunities(
    request: Request,
    principal: ApiPrincipal,
    paging: Paging,
    company_id: QueryId = None,
    is_closed: bool | None = None,
) -> dict[str, Any]:
    with read(request) as db:
        found = listing.opportunities(
            db,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
            company_id=company_id,
            is_closed=is_closed,
        )
    return page(request, paging, found.rows, found.total)


@router.post("", response_model=OpportunityOut, status_code=201, summary="Create an opportunity")
def create_opportunity(
    request: Request, principal: ApiPrincipal, data: OpportunityIn
) -> dict[str, Any]:
    """A deal on a company: company-level opportunity rules re-check its people at once."""
    ws = principal.workspace_id
    with tx(request) as db:
        opportunity_id = opportunities.create(
            db,
            workspace_id=ws,
            company_id=data.company_id,
            now=utcnow(),
            name=data.name,
            stage=data.stage,
            amount=data.amount,
            is_closed=data.is_closed,
            is_won=data.is_won,
            close_date=as_stored(data.close_date) if data.close_date else None,
            fields=data.fields,
            crm_id=data.crm_id,
            actor=principal.actor,
        )
        return listing.opportunity(db, workspace_id=ws, opportunity_id=opportunity_id)


@router.get("/{opportunity_id}", response_model=OpportunityOut, summary="Get an opportunity")
def get_opportunity(
    request: Request, principal: ApiPrincipal, opportunity_id: PathId
) -> dict[str, Any]:
    with read(request) as db:
        return listing.opportunity(
            db, workspace_id=principal.workspace_id, opportunity_id=opportunity_id
        )


@router.patch("/{opportunity_id}", response_model=OpportunityOut, summary="Change an opportunity")
def change_opportunity(
    request: Request, principal: ApiPrincipal, opportunity_id: PathId, data: OpportunityChange
) -> dict[str, Any]:
    ws = principal.workspace_id
    changes = {key: getattr(data, key) for key in data.model_fields_set}
    if changes.get("close_date") is not None:
        changes["close_date"] = as_stored(changes["close_date"])
    for required in ("name", "stage", "is_closed", "is_won", "fields"):
        if required in changes and changes[required] is None:
            del changes[required]  # null means "no change" for a field that must have a value
    with tx(request) as db:
        opportunities.update(
            db,
            workspace_id=ws,
            opportunity_id=opportunity_id,
            changes=changes,
            now=utcnow(),
            actor=principal.actor,
        )
        return listing.opportunity(db, workspace_id=ws, opportunity_id=opportunity_id)


@router.post(
    "/{opportunity_id}/contacts",
    response_model=OpportunityOut,
    status_code=201,
    summary="Add a contact role",
)
def add_contact(
    request: Request, principal: ApiPrincipal, opportunity_id: PathId, data: ContactIn
) -> dict[str, Any]:
    """Link a person to the deal: `person.has_opportunity` rules see it at once."""
    ws = principal.workspace_id
    with tx(request) as db:
        opportunities.add_contact(
            db,
            workspace_id=ws,
            opportunity_id=opportunity_id,
            person_id=data.person_id,
            role=data.role,
            now=utcnow(),
            actor=principal.actor,
        )
        return listing.opportunity(db, workspace_id=ws, opportunity_id=opportunity_id)
