"""Companies: list, create, read, change, and link a subsidiary to its parent (R12)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from optout.clock import as_stored, utcnow
from optout.services.directory import companies
from optout.services.reads import listing
from optout.web.api.common import BodyId, Domain, Input, Page, Paging, PathId, QueryId, page, read
from optout.web.api.common import transaction as tx
from optout.web.api.schemas import CompanyOut
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/companies", tags=["companies"])

Fields = Annotated[
    dict[str, str | int | float | bool | None],
    Field(description="Custom fields by lowercase name; a null value leaves one out."),
]
CrmId = Annotated[str, Field(max_length=64)]


class CompanyIn(Input):
    domain: Domain
    name: Annotated[str, Field(max_length=300)] = ""
    fields: Fields = Field(default_factory=dict)
    crm_id: CrmId | None = None


class CompanyChange(Input):
    """Only the fields given change. The domain is the company's identity: not editable."""

    name: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    fields: Fields | None = Field(None, description="Merged into the existing custom fields.")
    crm_id: CrmId | None = None
    last_replied_at: datetime | None = None
    last_activity_at: datetime | None = None


class ParentIn(Input):
    parent_id: BodyId


@router.get("", response_model=Page[CompanyOut], summary="List companies")
def list_companies(
    request: Request,
    principal: ApiPrincipal,
    paging: Paging,
    domain: Annotated[str | None, Query(max_length=255)] = None,
    group_id: QueryId = None,
) -> dict[str, Any]:
    """Companies of the workspace, oldest first; `group_id` lists a linked group."""
    with read(request) as db:
        found = listing.companies(
            db,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
            domain=domain,
            group_id=group_id,
        )
    return page(request, paging, found.rows, found.total)


@router.post("", response_model=CompanyOut, status_code=201, summary="Create a company")
def create_company(request: Request, principal: ApiPrincipal, data: CompanyIn) -> dict[str, Any]:
    ws = principal.workspace_id
    with tx(request) as db:
        company_id = companies.create(
            db,
            workspace_id=ws,
            domain=data.domain,
            name=data.name,
            fields=data.fields,
            crm_id=data.crm_id,
            now=utcnow(),
        )
        return dict(companies.get(db, workspace_id=ws, company_id=company_id))


@router.get("/{company_id}", response_model=CompanyOut, summary="Get a company")
def get_company(request: Request, principal: ApiPrincipal, company_id: PathId) -> dict[str, Any]:
    with read(request) as db:
        return dict(companies.get(db, workspace_id=principal.workspace_id, company_id=company_id))


@router.patch("/{company_id}", response_model=CompanyOut, summary="Change a company")
def change_company(
    request: Request, principal: ApiPrincipal, company_id: PathId, data: CompanyChange
) -> dict[str, Any]:
    """Change a company; everyone in its linked group is re-checked against enforced
    exclusions in the same transaction. A reply date here can trip a company-level
    rule such as `company.last_replied_at within 30 days`."""
    ws = principal.workspace_id
    changes = {key: getattr(data, key) for key in data.model_fields_set}
    if changes.get("name", "") is None:
        del changes["name"]  # null means "no change": a company always has a name
    for key in ("last_replied_at", "last_activity_at"):
        if changes.get(key) is not None:
            changes[key] = as_stored(changes[key])
    with tx(request) as db:
        companies.update(
            db,
            workspace_id=ws,
            company_id=company_id,
            changes=changes,
            actor=principal.actor,
            now=utcnow(),
        )
        return dict(companies.get(db, workspace_id=ws, company_id=company_id))


@router.put("/{company_id}/parent", response_model=CompanyOut, summary="Link to a parent")
def link_parent(
    request: Request, principal: ApiPrincipal, company_id: PathId, data: ParentIn
) -> dict[str, Any]:
    """Make the company a subsidiary of `parent_id`: a company-level exclusion that
    matches any company of the group now excludes the whole group."""
    ws = principal.workspace_id
    with tx(request) as db:
        companies.link(
            db,
            workspace_id=ws,
            parent_id=data.parent_id,
            child_id=company_id,
            now=utcnow(),
            actor=principal.actor,
        )
        return dict(companies.get(db, workspace_id=ws, company_id=company_id))


@router.delete("/{company_id}/parent", response_model=CompanyOut, summary="Unlink from parent")
def unlink_parent(request: Request, principal: ApiPrincipal, company_id: PathId) -> dict[str, Any]:
    """Detach the company (and its own subsidiaries) from its parent."""
    ws = principal.workspace_id
    with tx(request) as db:
        companies.unlink(db, workspace_id=ws, child_id=company_id, now=utcnow())
        return dict(companies.get(db, workspace_id=ws, company_id=company_id))
