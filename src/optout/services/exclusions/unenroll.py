"""Unenroll on save, for a save that removes many enrollments (DESIGN guarantee 6).

An exclusion that lists thousands of companies may end tens of thousands of
enrollments; ending them all in the save's own transaction held the write lock for
seconds. The save ends the first part itself, in its transaction
(`exclusions.SWEPT_WITH_THE_SAVE`: every one, for nearly every save, as R13 says), and
commits with its stored matches: from that commit on the exclusion is in force, and the
send-time check inside every claim (`sending.claim`) cancels a due email of anyone it
excludes, so nobody it excludes is emailed while the rest are being ended. The rest are
ended here in parts, each its own transaction, with the same events, reasons and counts
as a sweep in the save's transaction (`exclusions.sweep`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from optout.db.engine import read_transaction
from optout.eligibility.model import ExclusionSpec
from optout.services.enforcement import Removal
from optout.services.exclusions import saves
from optout.services.in_parts import MOST_ROWS, Progress, apply_in_parts


def sweeps(exclusion: ExclusionSpec) -> bool:
    """Whether saving `exclusion` ends enrollments (enabled, with unenroll-on-save)."""
    return exclusion.enabled and exclusion.unenroll_existing_on_save


def unenroll_in_parts(
    engine: Engine,
    transaction: Callable[[], AbstractContextManager[Connection]],
    *,
    workspace_id: int,
    exclusion: ExclusionSpec,
    actor: str,
    now: datetime,
    progress: Progress | None = None,
    most: int = MOST_ROWS,
) -> Removal:
    """End the enrollments a committed save of `exclusion` removes, part by part (each
    part re-checks that its enrollments are still active and still removed)."""
    if not sweeps(exclusion):
        return Removal(0, 0)
    with read_transaction(engine) as db:
        ids = saves.removable_ids(db, workspace_id=workspace_id, exclusion=exclusion, now=now)
    return apply_in_parts(
        engine,
        transaction,
        total=len(ids),
        part=lambda db, start, stop: saves.sweep(
            db,
            workspace_id=workspace_id,
            exclusion=exclusion,
            actor=actor,
            now=now,
            within=ids[start:stop],
        ),
        nothing=Removal(0, 0),
        finish=lambda _db, removal: removal,
        progress=progress,
        most=most,
    )
