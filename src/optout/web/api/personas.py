"""Personas: title keywords to include and to exclude (R24)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.db import tables as t
from optout.services.naming import row_by_id
from optout.services.reads import listing
from optout.services.sequences import personas
from optout.web.api.common import Input, Name, Page, Paging, PathId, page, read
from optout.web.api.common import transaction as tx
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/personas", tags=["personas"])

Keywords = Annotated[
    list[Annotated[str, Field(max_length=200)]], Field(max_length=500, default_factory=list)
]


class PersonaOut(BaseModel):
    id: int
    name: str
    include_keywords: list[str]
    exclude_keywords: list[str]
    created_at: datetime


class PersonaIn(Input):
    name: Name
    include_keywords: Keywords = Field(
        description="A title must contain one of these (none: any title)."
    )
    exclude_keywords: Keywords = Field(
        description="A title containing one of these keeps the person out."
    )


@router.get("", response_model=Page[PersonaOut], summary="List personas")
def list_personas(request: Request, principal: ApiPrincipal, paging: Paging) -> dict[str, Any]:
    with read(request) as db:
        found = listing.rows(
            db,
            t.personas,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
        )
    return page(request, paging, found.rows, found.total)


@router.post("", response_model=PersonaOut, status_code=201, summary="Create a persona")
def create_persona(request: Request, principal: ApiPrincipal, data: PersonaIn) -> dict[str, Any]:
    ws = principal.workspace_id
    with tx(request) as db:
        persona_id = personas.create(
            db,
            workspace_id=ws,
            name=data.name,
            now=utcnow(),
            include_keywords=data.include_keywords,
            exclude_keywords=data.exclude_keywords,
        )
        return row_by_id(db, t.personas, workspace_id=ws, id=persona_id, what="persona")


@router.get("/{persona_id}", response_model=PersonaOut, summary="Get a persona")
def get_persona(request: Request, principal: ApiPrincipal, persona_id: PathId) -> dict[str, Any]:
    with read(request) as db:
        return row_by_id(
            db, t.personas, workspace_id=principal.workspace_id, id=persona_id, what="persona"
        )
