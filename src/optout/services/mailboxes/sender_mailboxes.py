"""Sender mailboxes: the addresses a workspace sends from, with their limits (R37, R40).

A mailbox has a daily limit counted in its own calendar day (its time zone), a minimum
gap between two sends with a random jitter, and either the shared relay or its own SMTP
server, whose password is kept encrypted (`optout.crypto.SecretBox`) and never shown.
Pausing stops its sends (its emails wait, nothing is cancelled); resuming is an audited
act. A mailbox may have its own IMAP login for its replies (`imap_logins`); removing one
is `removal`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.crypto import SecretBox
from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound, about_field
from optout.mail import transport_urls
from optout.normalize import normalize_email
from optout.services import events
from optout.services.mailboxes import imap_logins
from optout.services.mailboxes.imap_logins import ImapLogin

DEFAULT_DAILY_LIMIT = 50
DEFAULT_GAP_SECONDS = 90
DEFAULT_JITTER = 0.5
MAX_DAILY_LIMIT = 100_000
MAX_GAP_SECONDS = 86_400
RELAY = "relay"  # the transport of a mailbox that sends through the shared relay


@dataclass(frozen=True)
class Mailbox:
    id: int
    address: str
    display_name: str
    signature: str
    transport: str  # "relay", or its own server's URL without the password
    has_password: bool
    daily_limit: int | None  # None: no daily limit
    min_gap_seconds: int
    gap_jitter: float
    time_zone: str
    owner: str | None  # the owning user's email
    imap: str | None  # its own IMAP login, imap://user@host:port/folder, without the password
    status: str
    pause_reason: str
    paused_at: datetime | None  # the last pause (the mailbox may have been resumed since)
    sent_today: int  # in the mailbox's own calendar day
    queued: int  # emails of its enrollments waiting to be sent
    sequences: list[str]

    @property
    def sender(self) -> str:
        """The From header's value: `Name <address>` or the address alone."""
        return f"{self.display_name} <{self.address}>" if self.display_name else self.address


@dataclass(frozen=True)
class Changes:
    """What an edit sets; None leaves a value as it is (`no_daily_limit` clears the limit,
    `shared_relay` drops the mailbox's own server, `no_imap` its IMAP login)."""

    address: str | None = None
    display_name: str | None = None
    signature: str | None = None
    daily_limit: int | None = None
    no_daily_limit: bool = False
    min_gap_seconds: int | None = None
    gap_jitter: float | None = None
    time_zone: str | None = None
    owner: str | None = None  # a member's email; "" removes the owner
    smtp_url: str | None = None
    smtp_password: str | None = None
    shared_relay: bool = False
    imap: ImapLogin | None = None
    no_imap: bool = False


# Checks (bad input before the first write) ---------------------------------------------


def check_address(raw: str) -> str:
    _one_line(raw, what="mailbox address")
    address = parseaddr(raw.strip())[1] or raw.strip()
    return normalize_email(address).address


def _one_line(value: str, *, what: str) -> None:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidInput(f"the {what} must be one line of text: it holds a line break")


def check_time_zone(name: str) -> str:
    name = name.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{name!r} is not a time zone name (use a name such as Europe/Berlin or "
            "America/New_York)",
            value=name,
        ).at("time_zone", "Time zone") from None
    return name


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_DAILY_LIMIT:
        raise InvalidInput(
            f"{limit:,} is not a daily limit: give a number of emails from 1 to "
            f"{MAX_DAILY_LIMIT:,}",
            value=str(limit),
        ).at("daily_limit", "Daily limit")
    return limit


def _check_gap(seconds: int) -> int:
    if not 0 <= seconds <= MAX_GAP_SECONDS:
        raise InvalidInput(
            f"{seconds:,} seconds is not a gap between two sends: give 0 to "
            f"{MAX_GAP_SECONDS:,} seconds (a day)",
            value=str(seconds),
        ).at("min_gap_seconds", "Seconds between two sends")
    return seconds


def _check_jitter(share: float) -> float:
    if not 0 <= share <= 1:
        raise InvalidInput(
            f"{share} is not a random jitter: give a share of the gap between 0 and 1",
            value=str(share),
        ).at("gap_jitter", "Random jitter")
    return share


def _check_name(name: str) -> str:
    with about_field("display_name", "Display name"):
        _one_line(name, what="display name")
    name = " ".join(name.split())
    if len(name) > 200:
        raise InvalidInput(
            f"a display name has at most 200 characters; this one has {len(name)}",
            value=name,
        ).at("display_name", "Display name")
    return name


def _split_smtp(url: str, password: str | None) -> tuple[str, str | None]:
    """(URL without its password, the password): the URL is checked as the relay's is."""
    _one_line(url, what="SMTP address")
    transport_urls.read(url)  # raises InvalidInput without repeating the URL
    parts = urlsplit(url.strip())
    given = unquote(parts.password) if parts.password else None
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), password or given


def with_password(url: str, password: str | None) -> str:
    """The URL the transport is built from: the stored URL with the password put back."""
    if not password:
        return url
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    if not user:
        return url
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _owner_id(db: Connection, *, workspace_id: int, owner: str) -> int:
    u, m = t.users, t.memberships
    found = db.scalar(
        sa.select(u.c.id)
        .join(m, m.c.user_id == u.c.id)
        .where(m.c.workspace_id == workspace_id, u.c.email == owner.strip().lower())
    )
    if found is None:
        raise InvalidInput(
            f"no member of this workspace signs in as {owner.strip()!r}: give a member's "
            "sign-in address, or leave it empty",
            value=owner,
        ).at("owner", "Owner")
    return int(found)


# Reads --------------------------------------------------------------------------------


def local_day(time_zone: str, now: datetime) -> date:
    """The mailbox's calendar day at `now` (naive UTC)."""
    return now.replace(tzinfo=UTC).astimezone(ZoneInfo(time_zone)).date()


def row(db: Connection, *, workspace_id: int, address: str) -> dict[str, Any]:
    b = t.mailboxes
    found = (
        db.execute(
            sa.select(b).where(
                b.c.workspace_id == workspace_id, b.c.address == check_address(address)
            )
        )
        .mappings()
        .first()
    )
    if found is None:
        raise NotFound(f"no mailbox {address!r} in this workspace")
    return dict(found)


def listing(
    db: Connection, *, workspace_id: int, now: datetime, mailbox_id: int | None = None
) -> list[Mailbox]:
    """Every mailbox of the workspace (or one), with today's sends and what is queued."""
    b, u, e, o, sm, s = (
        t.mailboxes,
        t.users,
        t.enrollments,
        t.outbound_emails,
        t.sequence_mailboxes,
        t.sequences,
    )
    where = [b.c.workspace_id == workspace_id]
    if mailbox_id is not None:
        where.append(b.c.id == mailbox_id)
    rows = db.execute(
        sa.select(b, u.c.email.label("owner_email"))
        .outerjoin(u, u.c.id == b.c.owner_user_id)
        .where(*where)
        .order_by(b.c.address)
    ).mappings()
    mailboxes = [dict(r) for r in rows]
    ids = [m["id"] for m in mailboxes]
    queued: dict[int, int] = dict(
        db.execute(
            sa.select(e.c.mailbox_id, sa.func.count())
            .join(o, o.c.enrollment_id == e.c.id)
            .where(e.c.mailbox_id.in_(ids), o.c.status == "queued")
            .group_by(e.c.mailbox_id)
        ).all()
    )
    used_by: dict[int, list[str]] = {}
    for mailbox, name in db.execute(
        sa.select(sm.c.mailbox_id, s.c.name)
        .join(s, s.c.id == sm.c.sequence_id)
        .where(sm.c.mailbox_id.in_(ids))
        .order_by(s.c.name)
    ):
        used_by.setdefault(mailbox, []).append(name)
    return [
        Mailbox(
            id=m["id"],
            address=m["address"],
            display_name=m["display_name"],
            signature=m["signature"],
            transport=m["smtp_url"] or RELAY,
            has_password=bool(m["smtp_password"]),
            daily_limit=m["daily_limit"],
            min_gap_seconds=m["min_gap_seconds"],
            gap_jitter=m["gap_jitter"],
            time_zone=m["time_zone"],
            owner=m["owner_email"],
            imap=imap_logins.describe(m),
            status=m["status"],
            pause_reason=m["pause_reason"],
            paused_at=m["paused_at"],
            sent_today=(
                m["sends_today"] if m["sends_day"] == local_day(m["time_zone"], now) else 0
            ),
            queued=int(queued.get(m["id"], 0)),
            sequences=used_by.get(m["id"], []),
        )
        for m in mailboxes
    ]


def get(db: Connection, *, workspace_id: int, address: str, now: datetime) -> Mailbox:
    found = row(db, workspace_id=workspace_id, address=address)
    return listing(db, workspace_id=workspace_id, now=now, mailbox_id=found["id"])[0]


# Writes -------------------------------------------------------------------------------


def create(
    db: Connection,
    *,
    workspace_id: int,
    address: str,
    actor: str,
    now: datetime,
    display_name: str = "",
    signature: str = "",
    daily_limit: int | None = DEFAULT_DAILY_LIMIT,
    min_gap_seconds: int = DEFAULT_GAP_SECONDS,
    gap_jitter: float = DEFAULT_JITTER,
    time_zone: str = "UTC",
    owner: str | None = None,
    smtp_url: str | None = None,
    smtp_password: str | None = None,
    imap: ImapLogin | None = None,
    keys: Sequence[str] = (),
) -> Mailbox:
    """Add a sender mailbox; Conflict if the workspace has that address already."""
    with about_field("address", "Mailbox address"):
        canonical = check_address(address)
    values: dict[str, Any] = {
        "display_name": _check_name(display_name),
        "signature": signature,
        "daily_limit": None if daily_limit is None else _check_limit(daily_limit),
        "min_gap_seconds": _check_gap(min_gap_seconds),
        "gap_jitter": _check_jitter(gap_jitter),
        "time_zone": check_time_zone(time_zone),
        "owner_user_id": (_owner_id(db, workspace_id=workspace_id, owner=owner) if owner else None),
    }
    values.update(_transport(smtp_url, smtp_password, keys))
    if imap is not None:
        values.update(imap_logins.values(imap, stored_password=None, keys=keys))
    _check_free(db, workspace_id=workspace_id, address=canonical)
    b = t.mailboxes
    mailbox_id = db.execute(
        b.insert()
        .values(
            workspace_id=workspace_id,
            address=canonical,
            status="active",
            pause_reason="",
            sends_today=0,
            created_at=now,
            updated_at=now,
            **values,
        )
        .returning(b.c.id)
    ).scalar_one()
    events.record(
        db,
        workspace_id=workspace_id,
        kind="mailbox_created",
        actor=actor,
        now=now,
        detail={"mailbox": canonical},
    )
    return listing(db, workspace_id=workspace_id, now=now, mailbox_id=mailbox_id)[0]


def _check_free(db: Connection, *, workspace_id: int, address: str) -> None:
    b = t.mailboxes
    if db.scalar(sa.select(b.c.id).where(b.c.workspace_id == workspace_id, b.c.address == address)):
        raise Conflict(f"the mailbox {address} exists already", value=address).at(
            "address", "Mailbox address"
        )


def _transport(url: str | None, password: str | None, keys: Sequence[str]) -> dict[str, Any]:
    if url is None or not url.strip():
        if password:
            raise InvalidInput("an SMTP password needs the mailbox's own SMTP server address")
        return {"smtp_url": None, "smtp_password": None}
    with about_field("smtp_url", "Own mail server"):
        stored_url, secret = _split_smtp(url, password)
    return {
        "smtp_url": stored_url,
        "smtp_password": SecretBox(keys).encrypt(secret) if secret else None,
    }


def edit(
    db: Connection,
    *,
    workspace_id: int,
    address: str,
    changes: Changes,
    actor: str,
    now: datetime,
    keys: Sequence[str] = (),
) -> Mailbox:
    current = row(db, workspace_id=workspace_id, address=address)
    values: dict[str, Any] = {}
    if changes.address is not None:
        with about_field("address", "Mailbox address"):
            canonical = check_address(changes.address)
        if canonical != current["address"]:
            _check_free(db, workspace_id=workspace_id, address=canonical)
            values["address"] = canonical
    if changes.display_name is not None:
        values["display_name"] = _check_name(changes.display_name)
    if changes.signature is not None:
        values["signature"] = changes.signature
    if changes.no_daily_limit:
        values["daily_limit"] = None
    elif changes.daily_limit is not None:
        values["daily_limit"] = _check_limit(changes.daily_limit)
    if changes.min_gap_seconds is not None:
        values["min_gap_seconds"] = _check_gap(changes.min_gap_seconds)
    if changes.gap_jitter is not None:
        values["gap_jitter"] = _check_jitter(changes.gap_jitter)
    if changes.time_zone is not None:
        values["time_zone"] = check_time_zone(changes.time_zone)
    if changes.owner is not None:
        values["owner_user_id"] = (
            _owner_id(db, workspace_id=workspace_id, owner=changes.owner)
            if changes.owner.strip()
            else None
        )
    if changes.shared_relay:
        values.update(_transport(None, None, keys))
    elif changes.smtp_url is not None:
        values.update(_transport(changes.smtp_url, changes.smtp_password, keys))
    elif changes.smtp_password is not None:
        if not current["smtp_url"]:
            raise InvalidInput("an SMTP password needs the mailbox's own SMTP server address")
        values["smtp_password"] = SecretBox(keys).encrypt(changes.smtp_password)
    if changes.no_imap:
        values.update(imap_logins.CLEARED)
    elif changes.imap is not None:
        values.update(
            imap_logins.values(changes.imap, stored_password=current["imap_password"], keys=keys)
        )
    values = {k: v for k, v in values.items() if current[k] != v}  # a new secret always differs
    if values:
        b = t.mailboxes
        db.execute(b.update().where(b.c.id == current["id"]).values(updated_at=now, **values))
        secret = {"smtp_password", "imap_password"}
        shown = sorted(k for k in values if k not in secret)
        events.record(
            db,
            workspace_id=workspace_id,
            kind="mailbox_edited",
            actor=actor,
            now=now,
            detail={
                "mailbox": current["address"],
                "was": current["address"] if "address" in values else None,
                "changed": shown + sorted(secret & set(values)),
            },
        )
    return listing(db, workspace_id=workspace_id, now=now, mailbox_id=current["id"])[0]


def pause(
    db: Connection, *, workspace_id: int, address: str, reason: str, actor: str, now: datetime
) -> Mailbox:
    """Stop the mailbox's sends: its emails wait, in their place (R40)."""
    current = row(db, workspace_id=workspace_id, address=address)
    reason = " ".join(reason.split()) or "paused by an admin"
    b = t.mailboxes
    db.execute(
        b.update()
        .where(b.c.id == current["id"])
        .values(
            status="paused", pause_reason=reason, paused_at=now, paused_by=actor, updated_at=now
        )
    )
    events.record(
        db,
        workspace_id=workspace_id,
        kind="mailbox_paused",
        actor=actor,
        now=now,
        detail={"mailbox": current["address"], "reason": reason},
    )
    return listing(db, workspace_id=workspace_id, now=now, mailbox_id=current["id"])[0]


def resume(
    db: Connection, *, workspace_id: int, address: str, actor: str, now: datetime
) -> Mailbox:
    """Let a paused mailbox send again; the pause it ends is written in the audit log."""
    current = row(db, workspace_id=workspace_id, address=address)
    if current["status"] == "active":
        raise Conflict(f"the mailbox {current['address']} is not paused")
    b = t.mailboxes
    db.execute(
        b.update()
        .where(b.c.id == current["id"])
        # `paused_at` stays: the breaker counts the sends made since the last pause.
        .values(status="active", pause_reason="", paused_by=None, updated_at=now)
    )
    events.record(
        db,
        workspace_id=workspace_id,
        kind="mailbox_resumed",
        actor=actor,
        now=now,
        detail={
            "mailbox": current["address"],
            "paused_because": current["pause_reason"],
            "paused_by": current["paused_by"],
        },
    )
    return listing(db, workspace_id=workspace_id, now=now, mailbox_id=current["id"])[0]


# Sequences ----------------------------------------------------------------------------


def for_sender(db: Connection, *, workspace_id: int, from_address: str, now: datetime) -> int:
    """The mailbox of a sequence's From address, made when the workspace has none: with no
    daily limit and no gap, so it sends as a From address always did until an admin
    gives it limits."""
    name, raw = parseaddr(from_address)
    canonical = check_address(raw or from_address)
    b = t.mailboxes
    found = db.scalar(
        sa.select(b.c.id).where(b.c.workspace_id == workspace_id, b.c.address == canonical)
    )
    if found is not None:
        return int(found)
    return int(
        db.execute(
            b.insert()
            .values(
                workspace_id=workspace_id,
                address=canonical,
                display_name=_check_name(name),
                signature="",
                daily_limit=None,
                min_gap_seconds=0,
                gap_jitter=0.0,
                time_zone="UTC",
                status="active",
                pause_reason="",
                sends_today=0,
                created_at=now,
                updated_at=now,
            )
            .returning(b.c.id)
        ).scalar_one()
    )


def attach(db: Connection, *, sequence_id: int, mailbox_ids: Sequence[int]) -> None:
    """Make `mailbox_ids` the mailboxes the sequence sends from (enrollments that have
    started keep theirs)."""
    sm = t.sequence_mailboxes
    db.execute(sm.delete().where(sm.c.sequence_id == sequence_id))
    if mailbox_ids:
        db.execute(
            sm.insert(),
            [{"sequence_id": sequence_id, "mailbox_id": m} for m in dict.fromkeys(mailbox_ids)],
        )


def set_for_sequence(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    addresses: Sequence[str],
    actor: str,
    now: datetime,
) -> list[str]:
    """The sequence sends from these mailboxes of the workspace (at least one)."""
    if not addresses:
        raise InvalidInput("a sequence needs at least one mailbox to send from")
    ids = [row(db, workspace_id=workspace_id, address=a)["id"] for a in addresses]
    attach(db, sequence_id=sequence_id, mailbox_ids=ids)
    chosen = sorted({check_address(a) for a in addresses})
    events.record(
        db,
        workspace_id=workspace_id,
        kind="sequence_mailboxes_set",
        actor=actor,
        now=now,
        sequence_id=sequence_id,
        detail={"mailboxes": chosen},
    )
    return chosen


def of_sequence(db: Connection, *, sequence_id: int) -> list[str]:
    b, sm = t.mailboxes, t.sequence_mailboxes
    return list(
        db.scalars(
            sa.select(b.c.address)
            .join(sm, sm.c.mailbox_id == b.c.id)
            .where(sm.c.sequence_id == sequence_id)
            .order_by(b.c.address)
        )
    )
