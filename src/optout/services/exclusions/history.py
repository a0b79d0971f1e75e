"""An exclusion's change history (R35): who created, changed, archived, restored or deleted
it and when, with the filter before and after each change, oldest first. Read from the
append-only events, which outlive the exclusion itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t

CHANGE_KINDS = (
    "exclusion_created",
    "exclusion_updated",
    "exclusion_archived",
    "exclusion_restored",
    "exclusion_deleted",
)


@dataclass(frozen=True)
class Change:
    at: datetime
    kind: str  # created, updated, archived, restored, deleted
    actor: str
    name: str  # the exclusion's name after the change
    filter_before: str | None
    filter_after: str | None
    # Other settings that changed: (setting, before, after).
    settings: list[tuple[str, Any, Any]]


def history(db: Connection, *, workspace_id: int, exclusion_id: int) -> list[Change]:
    e = t.events
    rows = db.execute(
        sa.select(e.c.at, e.c.kind, e.c.actor, e.c.detail)
        .where(
            e.c.workspace_id == workspace_id,
            e.c.exclusion_id == exclusion_id,
            e.c.kind.in_(CHANGE_KINDS),
        )
        .order_by(e.c.id)
    ).mappings()
    return [_change(r["at"], r["kind"], r["actor"], r["detail"] or {}) for r in rows]


def _name(detail: dict[str, Any]) -> str:
    return str(detail.get("name") or "")


def _change(at: datetime, kind: str, actor: str, detail: dict[str, Any]) -> Change:
    short = kind.removeprefix("exclusion_")
    if kind == "exclusion_updated":
        changes = dict(detail.get("changes") or {})
        before, after = changes.pop("filter", (None, None))
        return Change(
            at,
            short,
            actor,
            _name(detail),
            before,
            after,
            [(name, old, new) for name, (old, new) in changes.items()],
        )
    if kind == "exclusion_created":
        return Change(at, short, actor, _name(detail), None, detail.get("filter"), [])
    if kind == "exclusion_deleted":
        return Change(at, short, actor, _name(detail), detail.get("filter"), None, [])
    return Change(at, short, actor, _name(detail), None, None, [])
