"""Exclusions: create, edit, enable and disable, with the guard of R22 and the
unenroll-on-save sweep of R13 in the same transaction as the save."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.errors import ConfirmationRequired, Conflict, InvalidFilter, InvalidInput
from optout.filters import Level, to_text
from optout.services import decision_index, enrollment_queue, events
from optout.services.enforcement import Removal, end_enrollments
from optout.services.exclusion_rules import spec_from_row
from optout.services.exclusions.preview import Preview, preview
from optout.services.exclusions.reached import people_no_longer_reached, removable_enrollments
from optout.services.filters import FilterInput, read_filter, stored
from optout.services.in_parts import MOST_ROWS
from optout.services.naming import clean_name, ensure_unique, row_by_id, row_by_name

# R13: how many of the enrollments a save with unenroll-on-save removes end in the save's
# own transaction when the caller ends the rest in parts after the commit: every one,
# for nearly every save; a save that removes more holds the write lock for one part only.
SWEPT_WITH_THE_SAVE = MOST_ROWS


@dataclass(frozen=True)
class Saved:
    exclusion: ExclusionSpec
    preview: Preview
    removal: Removal


def _level(level: str | Level) -> Level:
    try:
        return Level(level)
    except ValueError:
        raise InvalidInput(f"level must be 'company' or 'people', not {level!r}") from None


def get(db: Connection, *, workspace_id: int, name: str) -> ExclusionSpec:
    row = row_by_name(db, t.exclusions, workspace_id=workspace_id, name=name, what="exclusion")
    return spec_from_row(row)


def get_by_id(db: Connection, *, workspace_id: int, exclusion_id: int) -> ExclusionSpec:
    row = row_by_id(db, t.exclusions, workspace_id=workspace_id, id=exclusion_id, what="exclusion")
    return spec_from_row(row)


def is_archived(db: Connection, *, exclusion_id: int) -> bool:
    x = t.exclusions
    return db.scalar(sa.select(x.c.archived_at).where(x.c.id == exclusion_id)) is not None


def create(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    level: str | Level,
    filter: FilterInput,
    actor: str,
    now: datetime,
    enabled: bool = True,
    exclude_from_sequences: bool = False,
    unenroll_existing_on_save: bool = False,
    confirm: bool = False,
    impact: Preview | None = None,
    unenroll_now: bool = True,
) -> Saved:
    """Save a new exclusion. `impact`, when given, is its preview read beforehand (in a
    read transaction, `draft`), so the save does not read it again while it holds the
    write lock; the guard of R22 holds either way. With `unenroll_now` False the
    unenroll-on-save sweep ends SWEPT_WITH_THE_SAVE enrollments at most in the save's
    transaction (every one, for nearly every save, R13) and leaves the rest to the caller,
    after the commit, in parts (`unenroll.unenroll_in_parts`)."""
    decision_index.hold_exclusive(db, workspace_id=workspace_id)  # first: the lock order
    draft = draft_of(
        name=name,
        level=level,
        filter=filter,
        enabled=enabled,
        exclude_from_sequences=exclude_from_sequences,
        unenroll_existing_on_save=unenroll_existing_on_save,
    )
    name, lvl, node = draft.name, draft.level, draft.filter
    ensure_unique(db, t.exclusions, workspace_id=workspace_id, name=name, what="exclusion")
    impact = guard(
        db, workspace_id=workspace_id, draft=draft, now=now, confirm=confirm, impact=impact
    )
    x = t.exclusions
    exclusion_id = db.execute(
        x.insert()
        .values(
            workspace_id=workspace_id,
            name=name,
            level=lvl.value,
            filter=stored(node),
            enabled=enabled,
            exclude_from_sequences=exclude_from_sequences,
            unenroll_existing_on_save=unenroll_existing_on_save,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        .returning(x.c.id)
    ).scalar_one()
    decision_index.rebuild(db, workspace_id=workspace_id, exclusion_id=exclusion_id, now=now)
    saved = get_by_id(db, workspace_id=workspace_id, exclusion_id=exclusion_id)
    events.record(
        db,
        workspace_id=workspace_id,
        kind="exclusion_created",
        actor=actor,
        now=now,
        exclusion_id=exclusion_id,
        detail={"name": name, "level": lvl.value, "filter": to_text(node)},
    )
    swept = _sweep_with_the_save(
        db, workspace_id=workspace_id, exclusion=saved, actor=actor, now=now, all_of=unenroll_now
    )
    return Saved(saved, impact, swept)


def update(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    actor: str,
    now: datetime,
    new_name: str | None = None,
    level: str | Level | None = None,
    filter: FilterInput | None = None,
    enabled: bool | None = None,
    exclude_from_sequences: bool | None = None,
    unenroll_existing_on_save: bool | None = None,
    confirm: bool = False,
    impact: Preview | None = None,
    unenroll_now: bool = True,
) -> Saved:
    """Edit an exclusion. A level change keeps the filter: it must be valid for the new
    level, or the save fails saying why (R22); nothing is reset or inverted. `impact`
    and `unenroll_now`: as for `create`."""
    decision_index.hold_exclusive(db, workspace_id=workspace_id)  # first: the lock order
    current, draft = changed(
        db,
        workspace_id=workspace_id,
        name=name,
        new_name=new_name,
        level=level,
        filter=filter,
        enabled=enabled,
        exclude_from_sequences=exclude_from_sequences,
        unenroll_existing_on_save=unenroll_existing_on_save,
    )
    if not confirm:
        refuse_narrowing_level_change(
            db, workspace_id=workspace_id, current=current, draft=draft, now=now
        )
    impact = guard(
        db, workspace_id=workspace_id, draft=draft, now=now, confirm=confirm, impact=impact
    )
    x = t.exclusions
    db.execute(
        x.update()
        .where(x.c.id == current.id)
        .values(
            name=draft.name,
            level=draft.level.value,
            filter=stored(draft.filter),
            enabled=draft.enabled,
            exclude_from_sequences=draft.exclude_from_sequences,
            unenroll_existing_on_save=draft.unenroll_existing_on_save,
            updated_at=now,
        )
    )
    changes = _changes(current, draft)
    if "filter" in changes or "level" in changes or current.matched_at is None:
        decision_index.rebuild(db, workspace_id=workspace_id, exclusion_id=current.id, now=now)
    # It may stop someone a sequence left out: ask about them again.
    enrollment_queue.requeue_skipped(db, workspace_id=workspace_id, now=now)
    events.record(
        db,
        workspace_id=workspace_id,
        kind="exclusion_updated",
        actor=actor,
        now=now,
        exclusion_id=current.id,
        detail={"name": draft.name, "changes": changes},
    )
    saved = get_by_id(db, workspace_id=workspace_id, exclusion_id=current.id)
    swept = _sweep_with_the_save(
        db, workspace_id=workspace_id, exclusion=saved, actor=actor, now=now, all_of=unenroll_now
    )
    return Saved(saved, impact, swept)


def changed(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    new_name: str | None = None,
    level: str | Level | None = None,
    filter: FilterInput | None = None,
    enabled: bool | None = None,
    exclude_from_sequences: bool | None = None,
    unenroll_existing_on_save: bool | None = None,
) -> tuple[ExclusionSpec, ExclusionSpec]:
    """The exclusion `name` as stored and as `update` would save it, checked; only reads."""
    current = get(db, workspace_id=workspace_id, name=name)
    if is_archived(db, exclusion_id=current.id):
        raise Conflict(f"{current.name!r} is archived; restore it before changing it")
    lvl = _level(level) if level is not None else current.level
    try:
        node = read_filter(filter if filter is not None else current.filter, lvl)
    except InvalidFilter as exc:
        if filter is None and lvl is not current.level:
            raise InvalidFilter(
                f"the filter of {current.name!r} does not fit the {lvl.value} level "
                f"({exc.message}); change the filter in the same edit",
                where="level",
            ) from exc
        raise
    target_name = clean_name(new_name, what="exclusion") if new_name else current.name
    if target_name != current.name:
        ensure_unique(
            db, t.exclusions, workspace_id=workspace_id, name=target_name, what="exclusion"
        )
    draft = ExclusionSpec(
        current.id,
        target_name,
        lvl,
        node,
        current.enabled if enabled is None else enabled,
        current.exclude_from_sequences
        if exclude_from_sequences is None
        else exclude_from_sequences,
        current.unenroll_existing_on_save
        if unenroll_existing_on_save is None
        else unenroll_existing_on_save,
    )
    return current, draft


NARROWED_SAMPLE = 3
_WHY_NARROWER = {
    Level.PEOPLE: (
        "a people-level rule looks at each person's own record and company only, so it "
        "no longer covers people at companies linked to a matching one (a parent or a "
        "subsidiary)"
    ),
    Level.COMPANY: (
        "a company-level rule looks at companies only, so it no longer covers people "
        "matched by their own record or people with no company"
    ),
}


def refuse_narrowing_level_change(
    db: Connection,
    *,
    workspace_id: int,
    current: ExclusionSpec,
    draft: ExclusionSpec,
    now: datetime,
) -> None:
    """ConfirmationRequired when an edit moves the rule to the other level and so stops
    covering people it covers now, naming how many, a few of them, and why (R12, R22);
    nothing when the level stays, the rule is disabled, or nobody drops out."""
    if current.level is draft.level or not (current.enabled and draft.enabled):
        return
    dropped = people_no_longer_reached(current, draft, workspace_id=workspace_id, now=now)
    dropped_ids = dropped.subquery()
    count = int(db.scalar(sa.select(sa.func.count()).select_from(dropped_ids)) or 0)
    if not count:
        return
    p = t.people
    sample = list(
        db.scalars(
            sa.select(p.c.email)
            .where(p.c.id.in_(sa.select(dropped_ids.c.id)))
            .order_by(p.c.email)
            .limit(NARROWED_SAMPLE)
        )
    )
    more = f" and {count - len(sample)} more" if count > len(sample) else ""
    people = "1 person" if count == 1 else f"{count} people"
    raise ConfirmationRequired(
        f"moving {current.name!r} from the {current.level.value} level to the "
        f"{draft.level.value} level stops it covering {people} it covers now "
        f"({', '.join(sample)}{more}): {_WHY_NARROWER[draft.level]}"
    )


def _changes(before: ExclusionSpec, after: ExclusionSpec) -> dict[str, list[Any]]:
    pairs = {
        "name": (before.name, after.name),
        "level": (before.level.value, after.level.value),
        "filter": (to_text(before.filter), to_text(after.filter)),
        "enabled": (before.enabled, after.enabled),
        "exclude_from_sequences": (before.exclude_from_sequences, after.exclude_from_sequences),
        "unenroll_existing_on_save": (
            before.unenroll_existing_on_save,
            after.unenroll_existing_on_save,
        ),
    }
    return {k: [old, new] for k, (old, new) in pairs.items() if old != new}


def draft_of(
    *,
    name: str,
    level: str | Level,
    filter: FilterInput,
    enabled: bool = True,
    exclude_from_sequences: bool = False,
    unenroll_existing_on_save: bool = False,
) -> ExclusionSpec:
    """A new exclusion as `create` would save it, checked, nothing read or written."""
    clean = clean_name(name, what="exclusion")
    lvl = _level(level)
    return ExclusionSpec(
        0,
        clean,
        lvl,
        read_filter(filter, lvl),
        enabled,
        exclude_from_sequences,
        unenroll_existing_on_save,
    )


def impact_of_new(
    db: Connection, *, workspace_id: int, draft: ExclusionSpec, now: datetime, confirm: bool
) -> Preview:
    """What saving the new `draft` would do, read before the save opens its write
    transaction; Conflict for a name taken, ConfirmationRequired as the save would."""
    ensure_unique(db, t.exclusions, workspace_id=workspace_id, name=draft.name, what="exclusion")
    return guard(db, workspace_id=workspace_id, draft=draft, now=now, confirm=confirm)


def guard(
    db: Connection,
    *,
    workspace_id: int,
    draft: ExclusionSpec,
    now: datetime,
    confirm: bool,
    impact: Preview | None = None,
) -> Preview:
    """The draft's preview (read now unless given); ConfirmationRequired when it needs a
    confirmation that was not given (R22)."""
    if impact is None:
        impact = preview(db, workspace_id=workspace_id, exclusion=draft, now=now)
    if impact.needs_confirmation and not confirm:
        raise ConfirmationRequired(
            "this save needs confirmation: " + "; ".join(impact.confirmation_reasons),
            preview=impact,
        )
    return impact


def _sweep_with_the_save(
    db: Connection,
    *,
    workspace_id: int,
    exclusion: ExclusionSpec,
    actor: str,
    now: datetime,
    all_of: bool,
) -> Removal:
    """The save's own sweep (R13): every enrollment it removes, or with `all_of` False the
    first SWEPT_WITH_THE_SAVE of them, the caller ending the rest after the commit."""
    within = (
        None
        if all_of
        else removable_ids(
            db, workspace_id=workspace_id, exclusion=exclusion, now=now, limit=SWEPT_WITH_THE_SAVE
        )
    )
    return sweep(
        db, workspace_id=workspace_id, exclusion=exclusion, actor=actor, now=now, within=within
    )


def removable_ids(
    db: Connection,
    *,
    workspace_id: int,
    exclusion: ExclusionSpec,
    now: datetime,
    after: int = 0,
    limit: int | None = None,
) -> list[int]:
    """The ids of the active enrollments the saved `exclusion` removes, in id order, after
    id `after` (at most `limit` of them)."""
    found = removable_enrollments(exclusion, workspace_id=workspace_id, now=now).subquery()
    ids = sa.select(found.c.enrollment_id).where(found.c.enrollment_id > after)
    return list(db.scalars(ids.order_by(found.c.enrollment_id).limit(limit)))


def sweep(
    db: Connection,
    *,
    workspace_id: int,
    exclusion: ExclusionSpec,
    actor: str,
    now: datetime,
    within: Sequence[int] | None = None,
) -> Removal:
    """End the active enrollments a saved exclusion with unenroll-on-save removes (R13),
    or, with `within`, those of them among these enrollment ids."""
    if not (exclusion.enabled and exclusion.unenroll_existing_on_save):
        return Removal(0, 0)
    targets = removable_enrollments(exclusion, workspace_id=workspace_id, now=now)
    if within is not None:
        targets = targets.where(t.enrollments.c.id.in_(list(within)))
    return end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=targets,
        status="unenrolled",
        reason=f"excluded by {exclusion.name!r} (unenroll on save)",
        rule=f"exclusion:{exclusion.id}",
        actor=actor,
        now=now,
    )


def set_enabled(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    enabled: bool,
    actor: str,
    now: datetime,
    confirm: bool = False,
    unenroll_now: bool = True,
) -> Saved:
    return update(
        db,
        workspace_id=workspace_id,
        name=name,
        actor=actor,
        now=now,
        enabled=enabled,
        confirm=confirm,
        unenroll_now=unenroll_now,
    )
