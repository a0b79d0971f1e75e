"""Personas: title keywords to include and to exclude (R24)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services import audience_index, events
from optout.services.directory.custom_fields import clean_text
from optout.services.naming import clean_name, ensure_unique, row_by_id, row_by_name


def keywords(words: Sequence[str], *, what: str) -> list[str]:
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
                include_keywords=keywords(include_keywords, what="include"),
                exclude_keywords=keywords(exclude_keywords, what="exclude"),
                created_at=now,
            )
            .returning(t.personas.c.id)
        ).scalar_one()
    )


@dataclass(frozen=True)
class Persona:
    id: int
    name: str
    include_keywords: tuple[str, ...]
    exclude_keywords: tuple[str, ...]


def _of(row: Mapping[str, Any]) -> Persona:
    return Persona(
        id=row["id"],
        name=row["name"],
        include_keywords=tuple(row["include_keywords"]),
        exclude_keywords=tuple(row["exclude_keywords"]),
    )


def get(db: Connection, *, workspace_id: int, persona_id: int) -> Persona:
    return _of(row_by_id(db, t.personas, workspace_id=workspace_id, id=persona_id, what="persona"))


def get_by_name(db: Connection, *, workspace_id: int, name: str) -> Persona:
    return _of(row_by_name(db, t.personas, workspace_id=workspace_id, name=name, what="persona"))


def update(
    db: Connection,
    *,
    workspace_id: int,
    persona_id: int,
    name: str,
    include_keywords: Sequence[str],
    exclude_keywords: Sequence[str],
    actor: str,
    now: datetime,
) -> Persona:
    """Change a persona's name and keywords. Audiences built on it take the new keywords
    at once (R24): the members of those a sequence enrolls from by itself are matched
    again here."""
    before = get(db, workspace_id=workspace_id, persona_id=persona_id)
    after = Persona(
        id=before.id,
        name=clean_name(name, what="persona"),
        include_keywords=tuple(keywords(include_keywords, what="include")),
        exclude_keywords=tuple(keywords(exclude_keywords, what="exclude")),
    )
    if after == before:
        return before
    if after.name != before.name:
        ensure_unique(db, t.personas, workspace_id=workspace_id, name=after.name, what="persona")
    p = t.personas
    db.execute(
        p.update()
        .where(p.c.id == persona_id)
        .values(
            name=after.name,
            include_keywords=list(after.include_keywords),
            exclude_keywords=list(after.exclude_keywords),
        )
    )
    old, new = asdict(before), asdict(after)
    events.record(
        db,
        workspace_id=workspace_id,
        kind="persona_updated",
        actor=actor,
        now=now,
        detail={
            "name": after.name,
            "changes": {key: [old[key], new[key]] for key in new if old[key] != new[key]},
        },
    )
    a = t.audiences
    audience_index.changed(
        db,
        workspace_id=workspace_id,
        audience_ids=list(db.scalars(sa.select(a.c.id).where(a.c.persona_id == persona_id))),
        now=now,
    )
    return after
