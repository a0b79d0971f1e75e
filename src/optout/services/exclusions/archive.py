"""Retiring an exclusion: archive it (it applies nowhere and leaves the default list, its
matches kept), restore it, or delete it for good. Deleting makes everyone it matched
eligible again, so it shows the same impact preview as a save and, when the rule is in
force and matches anyone, needs the same explicit confirmation (R22); every step is an
event with the rule's filter (R35), kept after the rule is gone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.errors import ConfirmationRequired, Conflict
from optout.filters import to_text
from optout.services import decision_index, enrollment_queue, events
from optout.services.enforcement import Removal
from optout.services.exclusions import saves
from optout.services.exclusions.preview import Preview, preview


@dataclass(frozen=True)
class Restored:
    exclusion: ExclusionSpec
    removal: Removal


def _current(db: Connection, *, workspace_id: int, exclusion_id: int) -> ExclusionSpec:
    """The exclusion, with its stored matches true and held still while they are read
    (`decision_index`)."""
    decision_index.flush(db)
    decision_index.hold(db, workspace_id=workspace_id)
    return saves.get_by_id(db, workspace_id=workspace_id, exclusion_id=exclusion_id)


def _record(
    db: Connection, spec: ExclusionSpec, *, workspace_id: int, kind: str, actor: str, now: datetime
) -> None:
    events.record(
        db,
        workspace_id=workspace_id,
        kind=kind,
        actor=actor,
        now=now,
        exclusion_id=spec.id,
        detail={"name": spec.name, "level": spec.level.value, "filter": to_text(spec.filter)},
    )


def archive(
    db: Connection, *, workspace_id: int, exclusion_id: int, actor: str, now: datetime
) -> ExclusionSpec:
    spec = saves.get_by_id(db, workspace_id=workspace_id, exclusion_id=exclusion_id)
    if saves.is_archived(db, exclusion_id=spec.id):
        raise Conflict(f"{spec.name!r} is archived already")
    x = t.exclusions
    db.execute(x.update().where(x.c.id == spec.id).values(archived_at=now, updated_at=now))
    _record(db, spec, workspace_id=workspace_id, kind="exclusion_archived", actor=actor, now=now)
    enrollment_queue.requeue_skipped(db, workspace_id=workspace_id, now=now)
    return spec


def restore(
    db: Connection,
    *,
    workspace_id: int,
    exclusion_id: int,
    actor: str,
    now: datetime,
    confirm: bool = False,
) -> Restored:
    """Put an archived exclusion back in force as it was: like a save, it may need
    confirmation (R22) and, with unenroll-on-save, unenrolls whom it matches (R13)."""
    spec = _current(db, workspace_id=workspace_id, exclusion_id=exclusion_id)
    if not saves.is_archived(db, exclusion_id=spec.id):
        raise Conflict(f"{spec.name!r} is not archived")
    saves.guard(db, workspace_id=workspace_id, draft=spec, now=now, confirm=confirm)
    x = t.exclusions
    db.execute(x.update().where(x.c.id == spec.id).values(archived_at=None, updated_at=now))
    _record(db, spec, workspace_id=workspace_id, kind="exclusion_restored", actor=actor, now=now)
    removal = saves.sweep(db, workspace_id=workspace_id, exclusion=spec, actor=actor, now=now)
    return Restored(spec, removal)


def impact_now(
    db: Connection, *, workspace_id: int, exclusion_id: int, now: datetime
) -> tuple[ExclusionSpec, Preview]:
    """The exclusion and whom it matches now: the people its deletion makes eligible
    again, or its restoring excludes again."""
    spec = _current(db, workspace_id=workspace_id, exclusion_id=exclusion_id)
    return spec, preview(db, workspace_id=workspace_id, exclusion=spec, now=now)


def delete(
    db: Connection,
    *,
    workspace_id: int,
    exclusion_id: int,
    actor: str,
    now: datetime,
    confirm: bool = False,
) -> ExclusionSpec:
    """Delete the exclusion and its stored matches. A rule in force (enabled, not archived)
    that matches anyone is deleted only with `confirm`."""
    spec = _current(db, workspace_id=workspace_id, exclusion_id=exclusion_id)
    in_force = spec.enabled and not saves.is_archived(db, exclusion_id=spec.id)
    if in_force and not confirm:
        impact = preview(db, workspace_id=workspace_id, exclusion=spec, now=now)
        if impact.people_matched:
            raise ConfirmationRequired(
                f"deleting {spec.name!r} makes the {impact.people_matched:,} people it "
                "excludes now eligible again; confirm to delete it"
            )
    _record(db, spec, workspace_id=workspace_id, kind="exclusion_deleted", actor=actor, now=now)
    x = t.exclusions
    db.execute(x.delete().where(x.c.id == spec.id, x.c.workspace_id == workspace_id))
    enrollment_queue.requeue_skipped(db, workspace_id=workspace_id, now=now)
    return spec
