"""Rulesets: whether exclusions apply, the re-enrollment cooldown and the company cap of
the sequences that use them (R9, R16, R27). Any key may read them; only an admin key
may create or change one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.db import tables as t
from optout.eligibility.model import RulesetSpec
from optout.services.access.accounts import Role
from optout.services.reads import listing
from optout.services.sequences import rulesets
from optout.web.api.common import Input, Name, Page, Paging, PathId, page, read
from optout.web.api.common import transaction as tx
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/rulesets", tags=["rulesets"])

Cooldown = Annotated[int, Field(ge=0, le=36_500, description="Days before re-entry.")]
Cap = Annotated[int, Field(ge=1, le=1_000_000, description="Active people per company at once.")]


class RulesetOut(BaseModel):
    id: int
    name: str
    exclusions_enabled: bool
    reenroll_cooldown_days: int
    max_active_per_company: int | None

    @classmethod
    def of(cls, spec: RulesetSpec) -> RulesetOut:
        return cls(
            id=spec.id,
            name=spec.name,
            exclusions_enabled=spec.exclusions_enabled,
            reenroll_cooldown_days=spec.reenroll_cooldown_days,
            max_active_per_company=spec.max_active_per_company,
        )


class RulesetIn(Input):
    name: Name
    exclusions_enabled: bool = Field(True, description="Off: its sequences ignore exclusions.")
    reenroll_cooldown_days: Cooldown = 0
    max_active_per_company: Cap | None = None


class RulesetChange(Input):
    """Only the fields given change; `max_active_per_company: null` removes the cap."""

    name: Name | None = None
    exclusions_enabled: bool | None = None
    reenroll_cooldown_days: Cooldown | None = None
    max_active_per_company: Cap | None = None
    confirm: bool = Field(
        default=False,
        description="Turn exclusions off even where sequences use the ruleset: without "
        "it, that change answers 409 naming the exclusions that would stop applying.",
    )


@router.get("", response_model=Page[RulesetOut], summary="List rulesets")
def list_rulesets(request: Request, principal: ApiPrincipal, paging: Paging) -> dict[str, Any]:
    with read(request) as db:
        found = listing.rows(
            db,
            t.rulesets,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
        )
    return page(request, paging, found.rows, found.total)


@router.post("", response_model=RulesetOut, status_code=201, summary="Create a ruleset (admin)")
def create_ruleset(request: Request, principal: ApiPrincipal, data: RulesetIn) -> RulesetOut:
    principal.require(Role.ADMIN)
    ws = principal.workspace_id
    with tx(request) as db:
        ruleset_id = rulesets.create(
            db,
            workspace_id=ws,
            name=data.name,
            now=utcnow(),
            exclusions_enabled=data.exclusions_enabled,
            reenroll_cooldown_days=data.reenroll_cooldown_days,
            max_active_per_company=data.max_active_per_company,
        )
        return RulesetOut.of(rulesets.spec(db, workspace_id=ws, ruleset_id=ruleset_id))


@router.get("/{ruleset_id}", response_model=RulesetOut, summary="Get a ruleset")
def get_ruleset(request: Request, principal: ApiPrincipal, ruleset_id: PathId) -> RulesetOut:
    with read(request) as db:
        spec = rulesets.spec(db, workspace_id=principal.workspace_id, ruleset_id=ruleset_id)
    return RulesetOut.of(spec)


@router.patch("/{ruleset_id}", response_model=RulesetOut, summary="Change a ruleset (admin)")
def change_ruleset(
    request: Request, principal: ApiPrincipal, ruleset_id: PathId, data: RulesetChange
) -> RulesetOut:
    """Change settings; every later send is checked under the new ones."""
    principal.require(Role.ADMIN)
    changes = {key: getattr(data, key) for key in data.model_fields_set - {"confirm"}}
    for required in ("name", "exclusions_enabled", "reenroll_cooldown_days"):
        if required in changes and changes[required] is None:
            del changes[required]  # null means "no change" for a setting that needs a value
    with tx(request) as db:
        spec = rulesets.update(
            db,
            workspace_id=principal.workspace_id,
            ruleset_id=ruleset_id,
            changes=changes,
            actor=principal.actor,
            now=utcnow(),
            confirm=data.confirm,
        )
    return RulesetOut.of(spec)
