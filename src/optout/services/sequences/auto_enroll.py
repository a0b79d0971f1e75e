"""A sequence that enrolls by itself (R41): its setting, switching it on or off, and what
a change of its audience or ruleset does to it.

Switching a sequence on stores its audience's members in the decision index
(`audience_index.store`) and queues every member never enrolled in it; from then on the
index's flush queues each person who comes to be a member, and each not-enrolled person
something changed for (`enrollment_queue`). The pass that enrolls who the queue holds is
`enrollments.automatic`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services import audience_index, enrollment_queue, events
from optout.services.sequences import definitions


@dataclass(frozen=True)
class Setting:
    on: bool
    starts: datetime | None
    ends: datetime | None


def setting(db: Connection, *, sequence_id: int) -> Setting:
    s = t.sequences
    row = db.execute(
        sa.select(s.c.auto_enroll, s.c.auto_enroll_from, s.c.auto_enroll_until).where(
            s.c.id == sequence_id
        )
    ).one()
    return Setting(on=bool(row[0]), starts=row[1], ends=row[2])


def switch(
    db: Connection,
    *,
    workspace_id: int,
    sequence: str,
    on: bool,
    actor: str,
    now: datetime,
    starts: datetime | None = None,
    ends: datetime | None = None,
) -> Setting:
    """Turn a sequence's automatic enrollment on (between `starts` and `ends`, when given)
    or off. On, its audience's members who were never in the sequence are queued, and
    from then on everyone who comes to match."""
    target = definitions.spec_by_name(db, workspace_id=workspace_id, name=sequence)
    audience_id = definitions.audience_id(db, workspace_id=workspace_id, sequence_id=target.id)
    if on and audience_id is None:
        raise InvalidInput(
            f"sequence {target.name!r} has no audience: choose the audience it enrolls from "
            "before it can enroll by itself"
        )
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidInput(
            f"the end of automatic enrollment ({ends:%Y-%m-%d %H:%M}) must come after its "
            f"start ({starts:%Y-%m-%d %H:%M})"
        )
    before = setting(db, sequence_id=target.id)
    after = Setting(on=on, starts=starts if on else None, ends=ends if on else None)
    if after == before:
        return after
    s = t.sequences
    db.execute(
        s.update()
        .where(s.c.id == target.id)
        .values(auto_enroll=after.on, auto_enroll_from=after.starts, auto_enroll_until=after.ends)
    )
    assert audience_id is not None or not on
    if on and audience_id is not None:
        _start(
            db, workspace_id=workspace_id, sequence_id=target.id, audience_id=audience_id, now=now
        )
    elif audience_id is not None:
        _stop(db, sequence_id=target.id, audience_id=audience_id)
    events.record(
        db,
        workspace_id=workspace_id,
        kind="sequence_auto_enroll_on" if on else "sequence_auto_enroll_off",
        actor=actor,
        now=now,
        sequence_id=target.id,
        detail={
            "sequence": target.name,
            "from": after.starts.isoformat(sep=" ") if after.starts else None,
            "until": after.ends.isoformat(sep=" ") if after.ends else None,
        },
    )
    return after


def _start(
    db: Connection, *, workspace_id: int, sequence_id: int, audience_id: int, now: datetime
) -> None:
    a, am, e = t.audiences, t.audience_matches, t.enrollments
    if db.scalar(sa.select(a.c.matched_at).where(a.c.id == audience_id)) is None:
        audience_index.store(db, workspace_id=workspace_id, audience_id=audience_id, now=now)
    never = sa.select(am.c.person_id).where(
        am.c.audience_id == audience_id,
        am.c.person_id.not_in(sa.select(e.c.person_id).where(e.c.sequence_id == sequence_id)),
    )
    enrollment_queue.queue_members(
        db, workspace_id=workspace_id, audience_id=audience_id, people=never, now=now
    )


def _stop(db: Connection, *, sequence_id: int, audience_id: int) -> None:
    """Empty the sequence's queue; stop storing its audience when no other sequence that
    enrolls by itself reads it."""
    s, q, a, am = t.sequences, t.enrollment_queue, t.audiences, t.audience_matches
    db.execute(q.delete().where(q.c.sequence_id == sequence_id))
    still_read = db.scalar(
        sa.select(sa.exists().where(s.c.audience_id == audience_id, s.c.auto_enroll.is_(True)))
    )
    if not still_read:
        db.execute(am.delete().where(am.c.audience_id == audience_id))
        db.execute(a.update().where(a.c.id == audience_id).values(matched_at=None))


def settings_changed(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    audience_before: int | None,
    now: datetime,
) -> None:
    """A sequence's settings changed. If it enrolls by itself: from another audience,
    the new audience's members never in the sequence are queued and the old one's
    not-enrolled view is dropped (no audience: it stops enrolling by itself); under
    another ruleset, its not-enrolled are asked again."""
    if not setting(db, sequence_id=sequence_id).on:
        return
    audience_id = definitions.audience_id(db, workspace_id=workspace_id, sequence_id=sequence_id)
    if audience_id == audience_before:
        enrollment_queue.requeue_skipped(db, workspace_id=workspace_id, now=now)
        return
    k = t.enrollment_skips
    db.execute(k.delete().where(k.c.sequence_id == sequence_id))
    if audience_before is not None:
        _stop(db, sequence_id=sequence_id, audience_id=audience_before)
    if audience_id is None:
        s = t.sequences
        db.execute(s.update().where(s.c.id == sequence_id).values(auto_enroll=False))
        return
    _start(db, workspace_id=workspace_id, sequence_id=sequence_id, audience_id=audience_id, now=now)
