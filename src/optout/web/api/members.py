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
from optout.errors import InvalidInput
from optout.services.access import accounts, invitations, members
from optout.services.access.accounts import NotSignedIn, Principal, Role
from optout.web.api.common import Email, Input, Name, PathId, read
from optout.web.api.common import transaction as tx
from optout.web.auth import ApiPrincipal, FormPrincipal

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
        None,
        description="Refused for an address that is not a member: it is invited instead.",
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


class InvitationOut(BaseModel):
    id: int
    email: str
    role: RoleName
    status: Literal["pending", "accepted", "declined"]
    invited_by: str
    created_at: datetime


class ReceivedOut(BaseModel):
    id: int
    workspace: str = Field(description="The inviting workspace's slug, to sign in to it.")
    workspace_name: str
    role: RoleName


def _invitation_out(invitation: invitations.Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role.value,
        status=invitation.status,  # type: ignore[arg-type]
        invited_by=invitation.invited_by,
        created_at=invitation.created_at,
    )


def _received_out(received: invitations.Received) -> ReceivedOut:
    return ReceivedOut(
        id=received.id,
        workspace=received.workspace_slug,
        workspace_name=received.workspace_name,
        role=received.role.value,
    )


def _member_out(member: members.Member) -> MemberOut:
    return MemberOut(
        user_id=member.user_id, email=member.email, name=member.name, role=member.role.value
    )


@router.get("/members", response_model=list[MemberOut], summary="List members (admin)")
def list_members(request: Request, principal: ApiPrincipal) -> list[MemberOut]:
    principal.require(Role.ADMIN)
    with read(request) as db:
        found = members.members(db, workspace_id=principal.workspace_id)
    return [_member_out(m) for m in found]


@router.post(
    "/members",
    response_model=MemberOut | InvitationOut,
    summary="Change a member's role, or invite someone (admin)",
    responses={202: {"model": InvitationOut, "description": "Invited; joins on accepting."}},
)
def add_member(
    request: Request, response: Response, principal: ApiPrincipal, data: MemberIn
) -> MemberOut | InvitationOut:
    """A member of this workspace gets the role; anyone else is invited (202) and becomes
    a member once they accept after signing in. The answer is the same whether the
    address has an account or not. Accounts are made by the installation's operator."""
    principal.require(Role.ADMIN)
    with tx(request) as db:
        here = members.is_member(db, workspace_id=principal.workspace_id, email=data.email)
        if data.password is not None and not here:
            raise InvalidInput(
                "a password cannot be set for someone who is not a member: invite the "
                "address (without a password); they accept after signing in"
            )
        done = members.add_or_invite(
            db, principal=principal, email=data.email, role=data.role, now=utcnow()
        )
    if isinstance(done, members.Member):
        return _member_out(done)
    response.status_code = 202
    return _invitation_out(done)


@router.get(
    "/invitations",
    response_model=list[InvitationOut],
    summary="List the invitations not answered yet (admin)",
)
def list_invitations(request: Request, principal: ApiPrincipal) -> list[InvitationOut]:
    with read(request) as db:
        found = invitations.pending(db, principal=principal)
    return [_invitation_out(i) for i in found]


@router.post(
    "/invitations/{invitation_id}/accept",
    response_model=ReceivedOut,
    summary="Accept an invitation (the invited user, signed in)",
)
def accept_invitation(
    request: Request, principal: FormPrincipal, invitation_id: PathId
) -> ReceivedOut:
    """For the signed-in user the invitation was sent to (session cookie and its
    X-CSRF-Token header): they become a member of the inviting workspace."""
    with tx(request) as db:
        done = invitations.accept(
            db, user_id=_user(principal), invitation_id=invitation_id, now=utcnow()
        )
    return _received_out(done)


@router.post(
    "/invitations/{invitation_id}/decline",
    response_model=ReceivedOut,
    summary="Decline an invitation (the invited user, signed in)",
)
def decline_invitation(
    request: Request, principal: FormPrincipal, invitation_id: PathId
) -> ReceivedOut:
    with tx(request) as db:
        done = invitations.decline(
            db, user_id=_user(principal), invitation_id=invitation_id, now=utcnow()
        )
    return _received_out(done)


def _user(principal: Principal) -> int:
    if principal.user_id is None:
        raise NotSignedIn("sign in as the invited user to answer an invitation")
    return principal.user_id


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
    with read(request) as db:
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
