"""Access to the workspace (admin only): members with their roles, and API keys.

A `member` may opt people out, enroll and unenroll, and edit exclusions and audiences
(R2); an `admin` may also change rulesets, members and API keys, and clear opt-outs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.services import accounts, members
from optout.services.accounts import Role
from optout.web.api.common import Email, Input, Name, PathId
from optout.web.api.common import transaction as tx
from optout.web.auth import ApiPrincipal

router = APIRouter(tags=["access (admin)"])

RoleName = Literal["member", "admin"]


class MemberOut(BaseModel):
    user_id: int
    email: str
    name: str
    role: RoleName


class MemberIn(Input):
    email: Email
    role: RoleName
    name: Annotated[str, Field(max_length=200)] | None = Field(
        None, description="For a new user only."
    )
    password: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        None, description="Creates the user when there is none with this address yet."
    )


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The visible start of the key, after `ok_`.")
    role: RoleName
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIn(Input):
    name: Name
    role: RoleName = "member"


class NewApiKeyOut(BaseModel):
    id: int
    name: str
    role: RoleName
    key: str = Field(description="Shown once; only its hash is kept. Send it as a Bearer token.")


def _member_out(member: members.Member) -> MemberOut:
    return MemberOut(
        user_id=member.user_id, email=member.email, name=member.name, role=member.role.value
    )


@router.get("/members", response_model=list[MemberOut], summary="List members (admin)")
def list_members(request: Request, principal: ApiPrincipal) -> list[MemberOut]:
    principal.require(Role.ADMIN)
    with tx(request) as db:
        found = members.members(db, workspace_id=principal.workspace_id)
    return [_member_out(m) for m in found]


@router.post("/members", response_model=MemberOut, summary="Add a member or change a role (admin)")
def add_member(request: Request, principal: ApiPrincipal, data: MemberIn) -> MemberOut:
    """Give a user a role in this workspace; with a password, a user who does not exist
    yet is created. The last admin cannot be demoted."""
    with tx(request) as db:
        member = members.add_member(
            db,
            principal=principal,
            email=data.email,
            role=data.role,
            now=utcnow(),
            name=data.name,
            password=data.password,
        )
    return _member_out(member)


@router.delete(
    "/members/{user_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a member (admin)",
)
def remove_member(request: Request, principal: ApiPrincipal, user_id: PathId) -> Response:
    """The user loses access to this workspace and their sessions in it end."""
    with tx(request) as db:
        members.remove_member(db, principal=principal, user_id=user_id, now=utcnow())
    return Response(status_code=204)


@router.get("/api-keys", response_model=list[ApiKeyOut], summary="List API keys (admin)")
def list_api_keys(request: Request, principal: ApiPrincipal) -> list[ApiKeyOut]:
    with tx(request) as db:
        found = members.api_keys(db, principal=principal)
    return [
        ApiKeyOut(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            role=k.role.value,
            created_by=k.created_by,
            created_at=k.created_at,
            last_used_at=k.last_used_at,
            revoked_at=k.revoked_at,
        )
        for k in found
    ]


@router.post(
    "/api-keys", response_model=NewApiKeyOut, status_code=201, summary="Create an API key (admin)"
)
def create_api_key(request: Request, principal: ApiPrincipal, data: ApiKeyIn) -> NewApiKeyOut:
    with tx(request) as db:
        made = accounts.create_api_key(
            db, principal=principal, name=data.name, role=data.role, now=utcnow()
        )
    return NewApiKeyOut(id=made.id, name=made.name, role=made.role.value, key=made.key)


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API key (admin)",
)
def revoke_api_key(request: Request, principal: ApiPrincipal, key_id: PathId) -> Response:
    with tx(request) as db:
        accounts.revoke_api_key(db, principal=principal, key_id=key_id, now=utcnow())
    return Response(status_code=204)
