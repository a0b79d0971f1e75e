"""Audiences: people filters (and personas) that feed sequences; the exclusions that affect
one, and switching individual ones off for its enrollments (R16, R24, R30)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from optout.clock import utcnow
from optout.db import tables as t
from optout.eligibility.model import AudienceSpec
from optout.filters import to_json, to_text
from optout.services.access.accounts import Principal
from optout.services.exclusions import saves
from optout.services.naming import row_by_id
from optout.services.reads import listing
from optout.services.sequences import audiences
from optout.web.api.common import BodyId, Input, Name, Page, Paging, PathId, page, read
from optout.web.api.common import transaction as tx
from optout.web.api.schemas import FILTER_HELP
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/audiences", tags=["audiences"])


class AudienceOut(BaseModel):
    id: int
    name: str
    filter: str | None = Field(description="People-level filter in the text syntax; null: all.")
    filter_json: dict[str, Any] | None
    persona: str | None
    include_keywords: list[str]
    exclude_keywords: list[str]
    switched_off: list[int] = Field(description="Ids of the exclusions it switches off.")
    sequences: list[str] = Field(description="Names of the sequences it feeds.")
    size: int | None = Field(None, description="People in it now (only on a single audience).")


class AudienceIn(Input):
    name: Name
    filter: (
        Annotated[
            Annotated[str, Field(min_length=1, max_length=100_000)] | dict[str, Any],
            Field(description=FILTER_HELP + " People level; leave it out for everyone."),
        ]
        | None
    ) = None
    persona_id: BodyId | None = None


class AffectingOut(BaseModel):
    """What one exclusion does to enrollments from the audience."""

    id: int
    name: str
    level: str
    state: str = Field(description="enforced | applies | switched_off | disabled")
    note: str


def _out(db: Connection, spec: AudienceSpec, *, workspace_id: int, size: int | None) -> AudienceOut:
    return AudienceOut(
        id=spec.id,
        name=spec.name,
        filter=to_text(spec.filter) if spec.filter is not None else None,
        filter_json=to_json(spec.filter) if spec.filter is not None else None,
        persona=spec.persona_name,
        include_keywords=list(spec.include_keywords),
        exclude_keywords=list(spec.exclude_keywords),
        switched_off=sorted(spec.switched_off),
        sequences=listing.sequences_fed(db, workspace_id=workspace_id, audience_id=spec.id),
        size=size,
    )


def _detail(db: Connection, *, workspace_id: int, audience_id: int) -> AudienceOut:
    spec = audiences.spec(db, workspace_id=workspace_id, audience_id=audience_id)
    size = audiences.size(db, workspace_id=workspace_id, audience=spec, now=utcnow())
    return _out(db, spec, workspace_id=workspace_id, size=size)


@router.get("", response_model=Page[AudienceOut], summary="List audiences")
def list_audiences(request: Request, principal: ApiPrincipal, paging: Paging) -> dict[str, Any]:
    ws = principal.workspace_id
    with read(request) as db:
        found = listing.rows(
            db, t.audiences, workspace_id=ws, limit=paging.limit, offset=paging.offset
        )
        items = [
            _out(
                db,
                audiences.spec(db, workspace_id=ws, audience_id=row["id"]),
                workspace_id=ws,
                size=None,
            )
            for row in found.rows
        ]
    return page(request, paging, items, found.total)


@router.post("", response_model=AudienceOut, status_code=201, summary="Create an audience")
def create_audience(request: Request, principal: ApiPrincipal, data: AudienceIn) -> AudienceOut:
    ws = principal.workspace_id
    with tx(request) as db:
        persona = None
        if data.persona_id is not None:
            persona = row_by_id(
                db, t.personas, workspace_id=ws, id=data.persona_id, what="persona"
            )["name"]
        audience_id = audiences.create(
            db, workspace_id=ws, name=data.name, now=utcnow(), filter=data.filter, persona=persona
        )
        return _detail(db, workspace_id=ws, audience_id=audience_id)


@router.get("/{audience_id}", response_model=AudienceOut, summary="Get an audience")
def get_audience(request: Request, principal: ApiPrincipal, audience_id: PathId) -> AudienceOut:
    """The audience with the number of people in it now."""
    with read(request) as db:
        return _detail(db, workspace_id=principal.workspace_id, audience_id=audience_id)


@router.get(
    "/{audience_id}/exclusions",
    response_model=list[AffectingOut],
    summary="Exclusions that affect an audience",
)
def affecting(request: Request, principal: ApiPrincipal, audience_id: PathId) -> list[AffectingOut]:
    """Every exclusion and what it does to enrollments from this audience: enforced
    everywhere, applies, switched off by this audience, or disabled."""
    ws = principal.workspace_id
    with read(request) as db:
        spec = audiences.spec(db, workspace_id=ws, audience_id=audience_id)
        found = audiences.affecting_exclusions(db, workspace_id=ws, audience=spec.name)
    return [
        AffectingOut(id=a.id, name=a.name, level=a.level, state=a.state, note=a.note) for a in found
    ]


def _switch(
    request: Request, principal: Principal, audience_id: int, exclusion_id: int, *, off: bool
) -> AudienceOut:
    ws = principal.workspace_id
    with tx(request) as db:
        spec = audiences.spec(db, workspace_id=ws, audience_id=audience_id)
        rule = saves.get_by_id(db, workspace_id=ws, exclusion_id=exclusion_id)
        switch = audiences.switch_off if off else audiences.switch_on
        switch(
            db,
            workspace_id=ws,
            audience=spec.name,
            exclusion=rule.name,
            actor=principal.actor,
            now=utcnow(),
        )
        return _detail(db, workspace_id=ws, audience_id=audience_id)


@router.put(
    "/{audience_id}/switched-off/{exclusion_id}",
    response_model=AudienceOut,
    summary="Switch an exclusion off for an audience",
)
def switch_off(
    request: Request, principal: ApiPrincipal, audience_id: PathId, exclusion_id: PathId
) -> AudienceOut:
    """Stop applying an exclusion to enrollments from this audience. An
    exclusion with `exclude_from_sequences` on cannot be switched off (409)."""
    return _switch(request, principal, audience_id, exclusion_id, off=True)


@router.delete(
    "/{audience_id}/switched-off/{exclusion_id}",
    response_model=AudienceOut,
    summary="Switch an exclusion back on for an audience",
)
def switch_on(
    request: Request, principal: ApiPrincipal, audience_id: PathId, exclusion_id: PathId
) -> AudienceOut:
    return _switch(request, principal, audience_id, exclusion_id, off=False)
