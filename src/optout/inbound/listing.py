"""Reading back what came in: the stored inbound messages of a workspace, newest first,
unmatched ones on their own (they are never dropped, R34)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.inbound.process import InboundResult, from_row


@dataclass(frozen=True)
class StoredMessage:
    received_at: datetime
    source: str
    from_address: str
    subject: str
    message_id: str | None
    result: InboundResult


def list_messages(
    db: Connection,
    *,
    workspace_id: int | None,
    unmatched: bool = False,
    limit: int = 50,
) -> list[StoredMessage]:
    """Newest first. `workspace_id=None` lists the messages no workspace could be found
    for (an operator's view of a way in that serves every workspace)."""
    if not 0 < limit <= 10_000:
        raise InvalidInput("limit must be between 1 and 10000")
    m = t.inbound_messages
    scope = m.c.workspace_id.is_(None) if workspace_id is None else m.c.workspace_id == workspace_id
    columns = [c for c in m.c if c.name not in ("raw", "headers")]
    query = sa.select(*columns).where(scope).order_by(m.c.id.desc()).limit(limit)
    if unmatched:
        query = query.where(m.c.match_by.is_(None))
    return [
        StoredMessage(
            received_at=row["received_at"],
            source=row["source"],
            from_address=row["from_address"],
            subject=row["subject"],
            message_id=row["message_id"],
            result=from_row(row),
        )
        for row in db.execute(query).mappings()
    ]
