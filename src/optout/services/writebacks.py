"""CRM write-backs: changes made here that the CRM must learn (R3, R31).

An opt-out made here (unsubscribe link, reply, a member) leaves a pending row in
the same transaction; the CRM sync drains pending rows later and writes them
only where the opt-out field is mapped `read_write`. Rows are per address, not
per record: the sync updates every CRM record with that address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.normalize import normalize_email

OPT_OUT_FIELD = "email_opt_out"


@dataclass(frozen=True)
class Writeback:
    id: int
    email: str
    field: str
    value: str
    status: str
    attempts: int
    last_error: str
    created_at: datetime
    updated_at: datetime


def record_opt_out_writeback(
    db: Connection, *, workspace_id: int, email: str, now: datetime
) -> bool:
    """Queue `email_opt_out = true` for the CRM; False when one is pending already."""
    return _record(
        db, workspace_id=workspace_id, email=email, field=OPT_OUT_FIELD, value="true", now=now
    )


def pending_writebacks(db: Connection, *, workspace_id: int) -> list[Writeback]:
    """The write-backs the CRM sync has still to make, oldest first."""
    w = t.crm_writebacks
    rows = db.execute(
        sa.select(w)
        .where(w.c.workspace_id == workspace_id, w.c.status == "pending")
        .order_by(w.c.id)
    ).mappings()
    return [
        Writeback(
            id=r["id"],
            email=r["email"],
            field=r["field"],
            value=r["value"],
            status=r["status"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )
        for r in rows
    ]


def _record(
    db: Connection, *, workspace_id: int, email: str, field: str, value: str, now: datetime
) -> bool:
    w = t.crm_writebacks
    values = {
        "workspace_id": workspace_id,
        "email": normalize_email(email).address,
        "field": field,
        "value": value,
        "status": "pending",
        "attempts": 0,
        "last_error": "",
        "created_at": now,
        "updated_at": now,
    }
    # One pending row per (workspace, email, field), even when two requests race:
    # the partial unique index decides, and the loser inserts nothing.
    conflict: dict[str, Any] = {
        "index_elements": [w.c.workspace_id, w.c.email, w.c.field],
        "index_where": sa.text("status = 'pending'"),
    }
    insert: Any
    if db.dialect.name == "postgresql":
        insert = postgresql.insert(w).values(values).on_conflict_do_nothing(**conflict)
    else:
        insert = sqlite.insert(w).values(values).on_conflict_do_nothing(**conflict)
    return bool(db.execute(insert).rowcount)
