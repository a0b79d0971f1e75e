"""CRM write-backs: changes made here that the CRM must learn (R3, R31).

An opt-out or complaint made here, by any channel but the CRM itself, leaves a
pending row in the same transaction; `optouts` queues it, so no caller can forget
(DESIGN guarantee 5). The CRM sync drains pending rows later and writes them only
where the opt-out field is mapped `read_write`. Rows are per address, not per
record: the sync updates every CRM record with that address.
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


def record_opt_out_writebacks_from(
    db: Connection, *, workspace_id: int, emails: sa.Select[Any], now: datetime
) -> None:
    """Queue `email_opt_out = true` for every normalized address `emails` selects (one
    column), in one statement; addresses with a pending row already are left alone."""
    chosen = emails.subquery()
    address = next(iter(chosen.c))
    rows = sa.select(
        sa.literal(workspace_id, sa.Integer),
        address,
        sa.literal(OPT_OUT_FIELD, sa.String),
        sa.literal("true", sa.Text),
        sa.literal("pending", sa.String),
        sa.literal(0, sa.Integer),
        sa.literal("", sa.Text),
        sa.literal(now, sa.DateTime),
        sa.literal(now, sa.DateTime),
    ).distinct()
    # SQLite reads `SELECT ... ON CONFLICT` as a join's ON without a WHERE between them.
    rows = rows.where(sa.true())
    columns = "workspace_id email field value status attempts last_error created_at updated_at"

    db.execute(_insert(db).from_select(columns.split(), rows).on_conflict_do_nothing(**_PENDING))


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
    insert = _insert(db).values(values).on_conflict_do_nothing(**_PENDING)
    # The inserted id, not the rowcount: psycopg reports -1 for an upsert that did nothing.
    return db.execute(insert.returning(t.crm_writebacks.c.id)).first() is not None


# One pending row per (workspace, email, field), even when two requests race: the
# partial unique index decides, and the loser inserts nothing.
_PENDING: dict[str, Any] = {
    "index_elements": ["workspace_id", "email", "field"],
    "index_where": sa.text("status = 'pending'"),
}


def _insert(db: Connection) -> Any:
    w = t.crm_writebacks
    return postgresql.insert(w) if db.dialect.name == "postgresql" else sqlite.insert(w)
