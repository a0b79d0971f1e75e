"""Personas: title keywords to include and to exclude (R24)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services.custom_fields import clean_text
from optout.services.naming import clean_name, ensure_unique


def _keywords(words: Sequence[str], *, what: str) -> list[str]:
    cleaned = list(
        dict.fromkeys(" ".join(clean_text(w, what=f"{what} keyword").split()) for w in words)
    )
    if any(not w for w in cleaned):
        raise InvalidInput(f"an empty {what} keyword would match every title")
    return cleaned


def create(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    now: datetime,
    include_keywords: Sequence[str] = (),
    exclude_keywords: Sequence[str] = (),
) -> int:
    name = clean_name(name, what="persona")
    ensure_unique(db, t.personas, workspace_id=workspace_id, name=name, what="persona")
    return int(
        db.execute(
            t.personas.insert()
            .values(
                workspace_id=workspace_id,
                name=name,
                include_keywords=_keywords(include_keywords, what="include"),
                exclude_keywords=_keywords(exclude_keywords, what="exclude"),
                created_at=now,
            )
            .returning(t.personas.c.id)
        ).scalar_one()
    )
