"""People: list and filter, create, read, change (a change re-checks their enrollments, R14)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.errors import InvalidInput
from optout.services.directory import companies, company_change, people
from optout.services.reads import listing
from optout.web.api.common import (
    BodyId,
    Domain,
    Email,
    EmailFilter,
    Input,
    Page,
    Paging,
    PathId,
    QueryId,
    page,
    read,
)
from optout.web.api.common import transaction as tx
from optout.web.api.schemas import PersonOut, RemovalOut
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/people", tags=["people"])

Fields = Annotated[
    dict[str, str | int | float | bool | None],
    Field(description="Custom fields by lowercase name; a null value leaves one out."),
]
FirstName = Annotated[str, Field(max_length=200)]
Title = Annotated[str, Field(max_length=300)]
Status = Annotated[str, Field(max_length=100)]
CrmId = Annotated[str, Field(max_length=64)]


class PersonIn(Input):
    email: Email
    first_name: FirstName = ""
    last_name: FirstName = ""
    title: Title = ""
    status: Status = ""
    company_id: BodyId | None = None
    company_domain: Domain | None = Field(
        None, description="Instead of company_id: the domain of an existing company."
    )
    fields: Fields = Field(default_factory=dict)
    crm_id: CrmId | None = None


class PersonChange(Input):
    """Only the fields given change; `company_id: null` detaches the person."""

    first_name: FirstName | None = None
    last_name: FirstName | None = None
    title: Title | None = None
    status: Status | None = None
    company_id: BodyId | None = None
    fields: Fields | None = Field(None, description="Merged into the existing custom fields.")
    crm_id: CrmId | None = None
    confirm: bool = Field(
        False,
        description="A change of company that stops exclusions covering the person is "
        "refused (409, naming them) unless this is true.",
    )


class PersonChanged(BaseModel):
    person: PersonOut
    removed: RemovalOut = Field(description="Enrollments the change ended.")


Filter = Annotated[str | None, Query(max_length=320)]


@router.get("", response_model=Page[PersonOut], summary="List people")
def list_people(
    request: Request,
    principal: ApiPrincipal,
    paging: Paging,
    email: EmailFilter = None,
    domain: Annotated[
        str | None, Query(max_length=255, description="The domain of their address.")
    ] = None,
    status: Filter = None,
    company_id: QueryId = None,
) -> dict[str, Any]:
    """People of the workspace, oldest first, filtered by address, address domain,
    status or company; each says whether the address is opted out or bounced."""
    with read(request) as db:
        found = listing.people(
            db,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
            email=email,
            domain=domain,
            status=status,
            company_id=company_id,
        )
    return page(request, paging, found.rows, found.total)


@router.post("", response_model=PersonOut, status_code=201, summary="Create a person")
def create_person(request: Request, principal: ApiPrincipal, data: PersonIn) -> dict[str, Any]:
    """A new person. An address that is opted out already stays opted out."""
    ws = principal.workspace_id
    if data.company_id is not None and data.company_domain is not None:
        raise InvalidInput("give company_id or company_domain, not both")
    with tx(request) as db:
        company_id = data.company_id
        if data.company_domain is not None:
            company_id = companies.get_id(db, workspace_id=ws, domain=data.company_domain)
        person_id = people.create(
            db,
            workspace_id=ws,
            email=data.email,
            now=utcnow(),
            first_name=data.first_name,
            last_name=data.last_name,
            title=data.title,
            status=data.status,
            company_id=company_id,
            fields=data.fields,
            crm_id=data.crm_id,
        )
        return listing.person(db, workspace_id=ws, person_id=person_id)


@router.get("/{person_id}", response_model=PersonOut, summary="Get a person")
def get_person(request: Request, principal: ApiPrincipal, person_id: PathId) -> dict[str, Any]:
    with read(request) as db:
        return listing.person(db, workspace_id=principal.workspace_id, person_id=person_id)


@router.patch("/{person_id}", response_model=PersonChanged, summary="Change a person")
def change_person(
    request: Request, principal: ApiPrincipal, person_id: PathId, data: PersonChange
) -> dict[str, Any]:
    """Change a person's data; enforced exclusions re-check them in the same
    transaction and end the enrollments they now match."""
    ws = principal.workspace_id
    changes = {key: getattr(data, key) for key in data.model_fields_set - {"confirm"}}
    now = utcnow()
    with tx(request) as db:
        if "company_id" in changes and not data.confirm:
            company_change.confirm_company(
                db, workspace_id=ws, person_id=person_id, company_id=changes["company_id"], now=now
            )
        removal = people.update(
            db,
            workspace_id=ws,
            person_id=person_id,
            changes=changes,
            actor=principal.actor,
            now=now,
        )
        person = listing.person(db, workspace_id=ws, person_id=person_id)
    return {"person": person, "removed": RemovalOut.of(removal)}
