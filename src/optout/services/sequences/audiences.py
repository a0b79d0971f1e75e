"""Audiences: a people filter, optionally a persona, that feeds sequences; each can switch
individual (not enforced) exclusions off for its own enrollments (R16, R24, R30)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.checks import persona_filter
from optout.eligibility.model import AudienceSpec
from optout.errors import Conflict
from optout.filters import Level, to_text
from optout.filters.operators import Context
from optout.filters.sql import compile_sql, people_scope
from optout.services import audience_index, enrollment_queue, fresh_rules
from optout.services.filters import FilterInput, load, read_filter, stored
from optout.services.naming import clean_name, ensure_unique, row_by_id, row_by_name

# Reading an audience (`spec`, what `optout explain` does) needs none of the saves of
# exclusions, personas or events: those are imported where an audience is changed.


def create(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    now: datetime,
    filter: FilterInput | None = None,
    persona: str | None = None,
) -> int:
    name = clean_name(name, what="audience")
    ensure_unique(db, t.audiences, workspace_id=workspace_id, name=name, what="audience")
    node = read_filter(filter, Level.PEOPLE) if filter is not None else None
    persona_id = None
    if persona is not None:
        persona_id = row_by_name(
            db, t.personas, workspace_id=workspace_id, name=persona, what="persona"
        )["id"]
    return int(
        db.execute(
            t.audiences.insert()
            .values(
                workspace_id=workspace_id,
                name=name,
                filter=stored(node) if node is not None else None,
                persona_id=persona_id,
                created_at=now,
            )
            .returning(t.audiences.c.id)
        ).scalar_one()
    )


def draft(
    db: Connection,
    *,
    workspace_id: int,
    filter: FilterInput | None,
    persona: str | None,
    name: str = "(draft)",
) -> AudienceSpec:
    """The unsaved audience a form describes, to count its members before saving
    (InvalidFilter when the filter is bad, NotFound for an unknown persona)."""
    from optout.services.sequences import personas

    node = read_filter(filter, Level.PEOPLE) if filter is not None else None
    chosen = personas.get_by_name(db, workspace_id=workspace_id, name=persona) if persona else None
    return AudienceSpec(
        id=0,
        name=name,
        filter=node,
        persona_name=chosen.name if chosen else None,
        include_keywords=chosen.include_keywords if chosen else (),
        exclude_keywords=chosen.exclude_keywords if chosen else (),
    )


def of_keywords(
    *, include_keywords: Sequence[str], exclude_keywords: Sequence[str]
) -> AudienceSpec:
    """An unsaved audience of everyone whose title fits these persona keywords, to count
    who a persona takes before it is saved (InvalidInput for an empty keyword)."""
    from optout.services.sequences import personas

    return AudienceSpec(
        id=0,
        name="(draft)",
        filter=None,
        persona_name="(draft)",
        include_keywords=tuple(personas.keywords(include_keywords, what="include")),
        exclude_keywords=tuple(personas.keywords(exclude_keywords, what="exclude")),
    )


def update(
    db: Connection,
    *,
    workspace_id: int,
    audience_id: int,
    name: str,
    filter: FilterInput | None,
    persona: str | None,
    actor: str,
    now: datetime,
) -> AudienceSpec:
    """Change an audience's name, filter (None: everyone) and persona (None: no persona).
    Its switch-offs stay; nobody is unenrolled here. Sequences that enroll from it by
    themselves enroll its new members (they are queued here); others use the new
    members at their next enrollment."""
    from optout.services import events
    from optout.services.sequences import personas

    before = spec(db, workspace_id=workspace_id, audience_id=audience_id)
    name = clean_name(name, what="audience")
    if name != before.name:
        ensure_unique(db, t.audiences, workspace_id=workspace_id, name=name, what="audience")
    node = read_filter(filter, Level.PEOPLE) if filter is not None else None
    persona_id = None
    if persona is not None:
        persona_id = personas.get_by_name(db, workspace_id=workspace_id, name=persona).id
    a = t.audiences
    db.execute(
        a.update()
        .where(a.c.id == audience_id)
        .values(
            name=name,
            filter=stored(node) if node is not None else None,
            persona_id=persona_id,
        )
    )
    after = spec(db, workspace_id=workspace_id, audience_id=audience_id)
    changes = {
        key: [old, new]
        for key, old, new in (
            ("name", before.name, after.name),
            ("filter", _text(before), _text(after)),
            ("persona", before.persona_name, after.persona_name),
        )
        if old != new
    }
    if "filter" in changes or "persona" in changes:
        audience_index.changed(db, workspace_id=workspace_id, audience_ids=[audience_id], now=now)
    if changes:
        events.record(
            db,
            workspace_id=workspace_id,
            kind="audience_updated",
            actor=actor,
            now=now,
            detail={"name": after.name, "changes": changes},
        )
    return after


def _text(audience: AudienceSpec) -> str | None:
    return to_text(audience.filter) if audience.filter is not None else None


def spec(db: Connection, *, workspace_id: int, audience_id: int) -> AudienceSpec:
    row = row_by_id(db, t.audiences, workspace_id=workspace_id, id=audience_id, what="audience")
    persona: dict[str, Any] | None = None
    if row["persona_id"] is not None:
        persona = row_by_id(
            db, t.personas, workspace_id=workspace_id, id=row["persona_id"], what="persona"
        )
    s = t.audience_exclusion_switches
    off = db.scalars(sa.select(s.c.exclusion_id).where(s.c.audience_id == audience_id))
    return AudienceSpec(
        id=row["id"],
        name=row["name"],
        filter=load(row["filter"], Level.PEOPLE) if row["filter"] is not None else None,
        persona_name=persona["name"] if persona else None,
        include_keywords=tuple(persona["include_keywords"]) if persona else (),
        exclude_keywords=tuple(persona["exclude_keywords"]) if persona else (),
        switched_off=frozenset(off),
    )


def spec_by_name(db: Connection, *, workspace_id: int, name: str) -> AudienceSpec:
    row = row_by_name(db, t.audiences, workspace_id=workspace_id, name=name, what="audience")
    return spec(db, workspace_id=workspace_id, audience_id=row["id"])


def switch_off(
    db: Connection, *, workspace_id: int, audience: str, exclusion: str, actor: str, now: datetime
) -> None:
    """Stop applying an exclusion to enrollments from this audience (R16 level 4)."""
    from optout.services import events
    from optout.services.exclusions import saves as exclusion_service

    target = spec_by_name(db, workspace_id=workspace_id, name=audience)
    rule = exclusion_service.get(db, workspace_id=workspace_id, name=exclusion)
    if rule.exclude_from_sequences:
        raise Conflict(
            f"{rule.name!r} has exclude_from_sequences on: it applies to every sequence and "
            "no audience can switch it off"
        )
    if rule.id in target.switched_off:
        return
    db.execute(
        t.audience_exclusion_switches.insert().values(audience_id=target.id, exclusion_id=rule.id)
    )
    events.record(
        db,
        workspace_id=workspace_id,
        kind="audience_exclusion_switched_off",
        actor=actor,
        now=now,
        exclusion_id=rule.id,
        detail={"audience": target.name, "exclusion": rule.name},
    )
    enrollment_queue.requeue_skipped(db, workspace_id=workspace_id, now=now)


def switch_on(
    db: Connection, *, workspace_id: int, audience: str, exclusion: str, actor: str, now: datetime
) -> None:
    from optout.services import events
    from optout.services.exclusions import saves as exclusion_service

    target = spec_by_name(db, workspace_id=workspace_id, name=audience)
    rule = exclusion_service.get(db, workspace_id=workspace_id, name=exclusion)
    s = t.audience_exclusion_switches
    db.execute(s.delete().where(s.c.audience_id == target.id, s.c.exclusion_id == rule.id))
    events.record(
        db,
        workspace_id=workspace_id,
        kind="audience_exclusion_switched_on",
        actor=actor,
        now=now,
        exclusion_id=rule.id,
        detail={"audience": target.name, "exclusion": rule.name},
    )


def members(audience: AudienceSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    """Ids of the people in the audience: its filter and its persona, set-based (R24)."""
    query, scope = people_scope()
    ctx = Context(now=now)
    query = query.where(t.people.c.workspace_id == workspace_id)
    for node in (
        audience.filter,
        persona_filter(audience.include_keywords, audience.exclude_keywords),
    ):
        if node is not None:
            query = query.where(compile_sql(node, scope=scope, ctx=ctx))
    return query


def size(db: Connection, *, workspace_id: int, audience: AudienceSpec, now: datetime) -> int:
    query = members(audience, workspace_id=workspace_id, now=now).subquery()
    return int(db.scalar(sa.select(sa.func.count()).select_from(query)) or 0)


@dataclass(frozen=True)
class AffectingExclusion:
    name: str
    level: str
    state: str  # enforced | applies | switched_off | disabled
    note: str
    id: int = 0  # the exclusion's


def affecting_exclusions(
    db: Connection, *, workspace_id: int, audience: str
) -> list[AffectingExclusion]:
    """Every exclusion and what it does to enrollments from this audience (R30)."""
    from optout.services.exclusions import in_sequences

    target = spec_by_name(db, workspace_id=workspace_id, name=audience)
    out = []
    rules = fresh_rules.all_specs(db, workspace_id=workspace_id)
    reach = in_sequences.reach_of_all(db, workspace_id=workspace_id, rules=rules)
    for rule in rules:
        if not rule.enabled:
            state, note = "disabled", "applies nowhere while disabled"
        elif rule.exclude_from_sequences:
            state, note = "enforced", f"{reach[rule.id].where()}; cannot be switched off"
        elif rule.id in target.switched_off:
            state, note = "switched_off", f"switched off by audience {target.name!r}"
        else:
            state = "applies"
            note = "blocks enrollment from this audience" + reach[rule.id].bypass_clause()
        out.append(AffectingExclusion(rule.name, rule.level.value, state, note, rule.id))
    return out
