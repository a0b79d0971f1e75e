"""A mailbox's own IMAP login, where the replies to its emails arrive (R37).

The host, port, login, TLS and folder are kept as they are; the password is kept
encrypted with the workspace keys (`optout.crypto.SecretBox`), like the CRM secrets, and
is never shown back. The inbound poller reads every mailbox that has a login
(`logins`), each in its own workspace.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.crypto import SecretBox
from optout.db import tables as t
from optout.errors import InvalidInput

DEFAULT_FOLDER = "INBOX"
TLS_PORT, PLAIN_PORT = 993, 143
CLEARED: dict[str, Any] = {
    "imap_host": None,
    "imap_port": None,
    "imap_user": None,
    "imap_password": None,
    "imap_ssl": True,
    "imap_folder": DEFAULT_FOLDER,
}


@dataclass(frozen=True)
class ImapLogin:
    """What an admin gives: `password` None keeps the stored one (an edit that changes
    only the folder, say); `port` None is 993 with TLS, 143 without."""

    host: str
    user: str
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    ssl: bool = True
    folder: str = DEFAULT_FOLDER


@dataclass(frozen=True)
class StoredLogin:
    """A mailbox's login as the poller uses it, the password decrypted."""

    workspace_id: int
    mailbox_id: int
    address: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ssl: bool
    folder: str


def describe(row: Mapping[str, Any]) -> str | None:
    """`imap://user@host:port/folder` of a mailbox row, without the password; None when
    it has no login."""
    if not row.get("imap_host"):
        return None
    return f"imap://{row['imap_user']}@{row['imap_host']}:{row['imap_port']}/{row['imap_folder']}"


def _text(value: str, *, field_name: str, label: str, longest: int) -> str:
    cleaned = value.strip()
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in cleaned) or " " in cleaned:
        raise InvalidInput(
            f"{cleaned!r} holds a space or a line break: give it as one word", value=value
        ).at(field_name, label)
    if not cleaned:
        raise InvalidInput("it is needed for the mailbox's IMAP login", value=value).at(
            field_name, label
        )
    if len(cleaned) > longest:
        raise InvalidInput(
            f"it has {len(cleaned)} characters; at most {longest} are kept", value=value
        ).at(field_name, label)
    return cleaned


def values(login: ImapLogin, *, stored_password: str | None, keys: Sequence[str]) -> dict[str, Any]:
    """The mailbox columns for `login`, checked; InvalidInput names the input at fault."""
    host = _text(login.host, field_name="imap_host", label="IMAP server", longest=255)
    user = _text(login.user, field_name="imap_user", label="IMAP login", longest=320)
    port = login.port if login.port is not None else (TLS_PORT if login.ssl else PLAIN_PORT)
    if not 0 < port < 65536:
        raise InvalidInput(
            f"{port} is not a port: give a number from 1 to 65535 (993 for IMAP over TLS)",
            value=str(port),
        ).at("imap_port", "IMAP port")
    folder = login.folder.strip() or DEFAULT_FOLDER
    if not folder.isascii() or any(ch in folder for ch in '\r\n"\\') or len(folder) > 200:
        raise InvalidInput(
            f"{folder!r} is not a folder name this server can be asked for: use plain "
            "letters, such as INBOX",
            value=login.folder,
        ).at("imap_folder", "IMAP folder")
    if login.password:
        password: str | None = SecretBox(keys).encrypt(login.password)
    elif stored_password:
        password = stored_password
    else:
        raise InvalidInput("give the password of the IMAP login", value="").at(
            "imap_password", "IMAP password"
        )
    return {
        "imap_host": host,
        "imap_port": port,
        "imap_user": user,
        "imap_password": password,
        "imap_ssl": login.ssl,
        "imap_folder": folder,
    }


def logins(
    db: Connection, *, keys: Sequence[str], workspace_id: int | None = None
) -> list[StoredLogin]:
    """Every mailbox with an IMAP login (of one workspace, or all), passwords decrypted."""
    b = t.mailboxes
    where: list[sa.ColumnElement[bool]] = [
        b.c.imap_host.is_not(None),
        b.c.imap_password.is_not(None),
    ]
    if workspace_id is not None:
        where.append(b.c.workspace_id == workspace_id)
    rows = db.execute(sa.select(b).where(*where).order_by(b.c.workspace_id, b.c.id)).mappings()
    found = [dict(r) for r in rows]
    if not found:
        return []
    box = SecretBox(keys)
    return [
        StoredLogin(
            workspace_id=r["workspace_id"],
            mailbox_id=r["id"],
            address=r["address"],
            host=r["imap_host"],
            port=r["imap_port"],
            user=r["imap_user"],
            password=box.decrypt(r["imap_password"]),
            ssl=bool(r["imap_ssl"]),
            folder=r["imap_folder"],
        )
        for r in found
    ]
