"""Sender mailboxes: the addresses sequences send from, their daily limits, gaps, time
zones and transports (R37, R40). Any key may read them; only an admin key may add,
change, pause, resume or remove one. An SMTP password is written, never read back."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.db import tables as t
from optout.services.access.accounts import Role
from optout.services.mailboxes import removal, reputation, sender_mailboxes
from optout.services.mailboxes.imap_logins import ImapLogin
from optout.services.naming import row_by_id
from optout.web.api.common import Input, Page, Paging, PathId, page, read
from optout.web.api.common import transaction as tx
from optout.web.auth import ApiPrincipal
from optout.web.site import site_of

router = APIRouter(tags=["mailboxes"])

Address = Annotated[str, Field(min_length=3, max_length=320, json_schema_extra={"format": "email"})]
Limit = Annotated[int, Field(ge=1, le=sender_mailboxes.MAX_DAILY_LIMIT, description="Sends a day.")]
Gap = Annotated[
    int, Field(ge=0, le=sender_mailboxes.MAX_GAP_SECONDS, description="Seconds between two sends.")
]
Jitter = Annotated[float, Field(ge=0, le=1, description="Random share of the gap added.")]
Zone = Annotated[str, Field(min_length=1, max_length=64, description="e.g. Europe/Berlin")]
SmtpUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description="The mailbox's own server, `smtp://user@host:587` or `smtps://...`; "
        "without it the mailbox sends through the shared relay.",
    ),
]


class ImapIn(Input):
    """The mailbox's own IMAP login, where replies to its emails arrive. The password is
    stored encrypted and never read back; leave it out of a change to keep the stored one."""

    host: str = Field(min_length=1, max_length=255)
    user: str = Field(min_length=1, max_length=320)
    password: str | None = Field(None, max_length=1000)
    port: int | None = Field(None, ge=1, le=65535, description="Default: 993 with TLS, else 143")
    ssl: bool = True
    folder: str = Field("INBOX", min_length=1, max_length=200)

    def login(self) -> ImapLogin:
        return ImapLogin(
            host=self.host,
            user=self.user,
            password=self.password,
            port=self.port,
            ssl=self.ssl,
            folder=self.folder,
        )


class MailboxOut(BaseModel):
    id: int
    address: str
    display_name: str
    signature: str
    transport: str = Field(description='"relay", or its own server without the password')
    has_password: bool
    daily_limit: int | None = Field(description="null: no daily limit")
    min_gap_seconds: int
    gap_jitter: float
    time_zone: str
    owner: str | None
    imap: str | None = Field(
        description="Its own IMAP login, imap://user@host:port/folder (no password); null: none"
    )
    status: str
    pause_reason: str
    paused_at: datetime | None
    sent_today: int
    queued: int
    sequences: list[str]

    @classmethod
    def of(cls, box: sender_mailboxes.Mailbox) -> MailboxOut:
        return cls(
            id=box.id,
            address=box.address,
            display_name=box.display_name,
            signature=box.signature,
            transport=box.transport,
            has_password=box.has_password,
            daily_limit=box.daily_limit,
            min_gap_seconds=box.min_gap_seconds,
            gap_jitter=box.gap_jitter,
            time_zone=box.time_zone,
            owner=box.owner,
            imap=box.imap,
            status=box.status,
            pause_reason=box.pause_reason,
            paused_at=box.paused_at if box.status == "paused" else None,
            sent_today=box.sent_today,
            queued=box.queued,
            sequences=box.sequences,
        )


class MailboxIn(Input):
    address: Address
    display_name: str = Field("", max_length=200)
    signature: str = Field("", max_length=10_000)
    daily_limit: Limit = sender_mailboxes.DEFAULT_DAILY_LIMIT
    min_gap_seconds: Gap = sender_mailboxes.DEFAULT_GAP_SECONDS
    gap_jitter: Jitter = sender_mailboxes.DEFAULT_JITTER
    time_zone: Zone = "UTC"
    owner: str | None = Field(None, max_length=320, description="A member's sign-in address.")
    smtp_url: SmtpUrl | None = None
    smtp_password: str | None = Field(None, max_length=1000)
    imap: ImapIn | None = None


class MailboxChange(Input):
    """Only the fields given change; `daily_limit: null` removes the limit, `smtp_url:
    null` sends through the shared relay again, `owner: null` removes the owner, `imap:
    null` removes its IMAP login."""

    address: Address | None = None
    display_name: str | None = Field(None, max_length=200)
    signature: str | None = Field(None, max_length=10_000)
    daily_limit: Limit | None = None
    min_gap_seconds: Gap | None = None
    gap_jitter: Jitter | None = None
    time_zone: Zone | None = None
    owner: str | None = Field(None, max_length=320)
    smtp_url: SmtpUrl | None = None
    smtp_password: str | None = Field(None, max_length=1000)
    imap: ImapIn | None = None


class PauseIn(Input):
    reason: str = Field("", max_length=500)


class SequenceMailboxesIn(Input):
    addresses: list[Address] = Field(min_length=1, max_length=500)


class SequenceMailboxesOut(BaseModel):
    sequence_id: int
    mailboxes: list[str]


class RemovedOut(BaseModel):
    address: str
    moved_to: str | None
    enrollments_moved: int
    round_robin: bool


def _address(db: Any, *, workspace_id: int, mailbox_id: int) -> str:
    row = row_by_id(db, t.mailboxes, workspace_id=workspace_id, id=mailbox_id, what="mailbox")
    return str(row["address"])


@router.get("/mailboxes", response_model=Page[MailboxOut], summary="List mailboxes")
def list_mailboxes(request: Request, principal: ApiPrincipal, paging: Paging) -> dict[str, Any]:
    with read(request) as db:
        found = sender_mailboxes.listing(db, workspace_id=principal.workspace_id, now=utcnow())
    items = [MailboxOut.of(m) for m in found[paging.offset : paging.offset + paging.limit]]
    return page(request, paging, items, len(found))


@router.post(
    "/mailboxes", response_model=MailboxOut, status_code=201, summary="Add a mailbox (admin)"
)
def create_mailbox(request: Request, principal: ApiPrincipal, data: MailboxIn) -> MailboxOut:
    principal.require(Role.ADMIN)
    with tx(request) as db:
        box = sender_mailboxes.create(
            db,
            workspace_id=principal.workspace_id,
            address=data.address,
            display_name=data.display_name,
            signature=data.signature,
            daily_limit=data.daily_limit,
            min_gap_seconds=data.min_gap_seconds,
            gap_jitter=data.gap_jitter,
            time_zone=data.time_zone,
            owner=data.owner,
            smtp_url=data.smtp_url,
            smtp_password=data.smtp_password,
            imap=data.imap.login() if data.imap is not None else None,
            keys=site_of(request).settings.encryption_keys,
            actor=principal.actor,
            now=utcnow(),
        )
    return MailboxOut.of(box)


class LinesOut(BaseModel):
    bounce_pause_rate: float
    complaint_pause_rate: float
    domain_complaint_pause_rate: float


Share = Annotated[float, Field(gt=0, le=1, description="A share of the last sends: 0.05 is 5%.")]


class LinesIn(Input):
    """Only the lines given change."""

    bounce_pause_rate: Share | None = None
    complaint_pause_rate: Share | None = None
    domain_complaint_pause_rate: Share | None = None


@router.get(
    "/mailboxes/breaker",
    response_model=LinesOut,
    summary="The lines that pause a mailbox (its last 200 sends)",
)
def get_lines(request: Request, principal: ApiPrincipal) -> LinesOut:
    with read(request) as db:
        lines = reputation.lines_of(db, workspace_id=principal.workspace_id)
    return LinesOut(**asdict(lines))


@router.put(
    "/mailboxes/breaker", response_model=LinesOut, summary="Change the breaker's lines (admin)"
)
def set_lines(request: Request, principal: ApiPrincipal, data: LinesIn) -> LinesOut:
    principal.require(Role.ADMIN)
    with tx(request) as db:
        lines = reputation.set_lines(
            db,
            workspace_id=principal.workspace_id,
            actor=principal.actor,
            now=utcnow(),
            bounce_pause_rate=data.bounce_pause_rate,
            complaint_pause_rate=data.complaint_pause_rate,
            domain_complaint_pause_rate=data.domain_complaint_pause_rate,
        )
    return LinesOut(**asdict(lines))


@router.get("/mailboxes/{mailbox_id}", response_model=MailboxOut, summary="Get a mailbox")
def get_mailbox(request: Request, principal: ApiPrincipal, mailbox_id: PathId) -> MailboxOut:
    with read(request) as db:
        address = _address(db, workspace_id=principal.workspace_id, mailbox_id=mailbox_id)
        box = sender_mailboxes.get(
            db, workspace_id=principal.workspace_id, address=address, now=utcnow()
        )
    return MailboxOut.of(box)


@router.patch(
    "/mailboxes/{mailbox_id}", response_model=MailboxOut, summary="Change a mailbox (admin)"
)
def change_mailbox(
    request: Request, principal: ApiPrincipal, mailbox_id: PathId, data: MailboxChange
) -> MailboxOut:
    principal.require(Role.ADMIN)
    given = data.model_fields_set
    changes = sender_mailboxes.Changes(
        address=data.address,
        display_name=data.display_name,
        signature=data.signature,
        daily_limit=data.daily_limit,
        no_daily_limit="daily_limit" in given and data.daily_limit is None,
        min_gap_seconds=data.min_gap_seconds,
        gap_jitter=data.gap_jitter,
        time_zone=data.time_zone,
        owner=("" if data.owner is None else data.owner) if "owner" in given else None,
        smtp_url=data.smtp_url,
        smtp_password=data.smtp_password,
        shared_relay="smtp_url" in given and data.smtp_url is None,
        imap=data.imap.login() if data.imap is not None else None,
        no_imap="imap" in given and data.imap is None,
    )
    with tx(request) as db:
        address = _address(db, workspace_id=principal.workspace_id, mailbox_id=mailbox_id)
        box = sender_mailboxes.edit(
            db,
            workspace_id=principal.workspace_id,
            address=address,
            changes=changes,
            keys=site_of(request).settings.encryption_keys,
            actor=principal.actor,
            now=utcnow(),
        )
    return MailboxOut.of(box)


@router.post(
    "/mailboxes/{mailbox_id}/pause", response_model=MailboxOut, summary="Pause a mailbox (admin)"
)
def pause_mailbox(
    request: Request, principal: ApiPrincipal, mailbox_id: PathId, data: PauseIn
) -> MailboxOut:
    """Its emails wait in their place; nothing is cancelled."""
    principal.require(Role.ADMIN)
    with tx(request) as db:
        address = _address(db, workspace_id=principal.workspace_id, mailbox_id=mailbox_id)
        box = sender_mailboxes.pause(
            db,
            workspace_id=principal.workspace_id,
            address=address,
            reason=data.reason,
            actor=principal.actor,
            now=utcnow(),
        )
    return MailboxOut.of(box)


@router.post(
    "/mailboxes/{mailbox_id}/resume",
    response_model=MailboxOut,
    summary="Resume a paused mailbox (admin)",
)
def resume_mailbox(request: Request, principal: ApiPrincipal, mailbox_id: PathId) -> MailboxOut:
    principal.require(Role.ADMIN)
    with tx(request) as db:
        address = _address(db, workspace_id=principal.workspace_id, mailbox_id=mailbox_id)
        box = sender_mailboxes.resume(
            db,
            workspace_id=principal.workspace_id,
            address=address,
            actor=principal.actor,
            now=utcnow(),
        )
    return MailboxOut.of(box)


@router.delete(
    "/mailboxes/{mailbox_id}", response_model=RemovedOut, summary="Remove a mailbox (admin)"
)
def remove_mailbox(
    request: Request,
    principal: ApiPrincipal,
    mailbox_id: PathId,
    move_to: Annotated[
        str | None,
        Query(
            max_length=320,
            description="The mailbox its active enrollments move to (it then sends for their "
            "sequences too); with active enrollments this or round_robin is needed (else 409).",
        ),
    ] = None,
    round_robin: Annotated[
        bool,
        Query(
            description="Deal its active enrollments over the other mailboxes of each of "
            "their sequences, as new enrollments are dealt."
        ),
    ] = False,
) -> RemovedOut:
    principal.require(Role.ADMIN)
    with tx(request) as db:
        address = _address(db, workspace_id=principal.workspace_id, mailbox_id=mailbox_id)
        removed = removal.remove(
            db,
            workspace_id=principal.workspace_id,
            address=address,
            move_to=move_to,
            round_robin=round_robin,
            actor=principal.actor,
            now=utcnow(),
        )
    return RemovedOut(
        address=removed.address,
        moved_to=removed.moved_to,
        enrollments_moved=removed.enrollments_moved,
        round_robin=removed.round_robin,
    )


@router.put(
    "/sequences/{sequence_id}/mailboxes",
    response_model=SequenceMailboxesOut,
    summary="Set the mailboxes a sequence sends from (admin)",
)
def set_sequence_mailboxes(
    request: Request, principal: ApiPrincipal, sequence_id: PathId, data: SequenceMailboxesIn
) -> SequenceMailboxesOut:
    """New enrollments are given one of them; started enrollments keep theirs."""
    principal.require(Role.ADMIN)
    with tx(request) as db:
        row_by_id(
            db, t.sequences, workspace_id=principal.workspace_id, id=sequence_id, what="sequence"
        )
        chosen = sender_mailboxes.set_for_sequence(
            db,
            workspace_id=principal.workspace_id,
            sequence_id=sequence_id,
            addresses=data.addresses,
            actor=principal.actor,
            now=utcnow(),
        )
    return SequenceMailboxesOut(sequence_id=sequence_id, mailboxes=chosen)
