"""Sequences that enroll by themselves (R41): the pass that enrolls who the queue holds.

A sequence switched on (`sequences.auto_enroll`) has its audience's members queued, and
from then on the index's flush queues each person who comes to be a member, and each
not-enrolled person something changed for (`enrollment_queue`). The pass (`run`, every
worker pass) enrolls the queue (new members first, then the people asked again, each in
the order they were queued; a batch sized to hold the write lock about half a second),
through the same set-based enrollment as every other path (`enrollments.enrolling.enroll`:
every check of eligibility, the cooldown, the company cap, the mailbox), and keeps, for
each person it left out, the first check that stopped them: the sequence's not-enrolled
view. A person is never active twice in one sequence: the database's unique index on
active enrollments holds it.

A CRM sync holds the pass for its workspace until it has applied everything it read
(`crm.sync`), so a contact and the deal that excludes them, read in the same run, are
both in before the contact is asked about.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.filters.sqlfunc import in_list
from optout.services import enrollment_queue
from optout.services.enrollments import enrolling, refusals
from optout.services.enrollments.refusals import refused_people
from optout.services.sequences import definitions

# The actor of the enrollments the pass makes (events, the enrollment's `enrolled_by`).
ACTOR = "automatic enrollment"
# People enrolled per sequence per pass at most: a large queue (an import, an audience
# edit) is enrolled over several passes, each a short transaction. Each sequence's batch is
# sized so that its pass holds the write lock about HOLD_SECONDS (`next_batch_size`),
# starting from FIRST_BATCH.
BATCH = 2000
FIRST_BATCH = 200
LEAST_BATCH = 20
HOLD_SECONDS = 0.5
# A person left out for the company's cap is asked again when an enrollment at their
# company ends in the sequence (`enrollment_queue.requeue_capped`), and, for the ways a
# place opens that no enrollment's end shows (a colleague who moved company), this long
# after at the latest.
CAP_RETRY = timedelta(hours=1)
# A CRM sync run still marked running after this is taken as crashed, and no longer holds
# the pass (the lease of a sync run, `crm.sync.RUN_LEASE`).
SYNC_LEASE = timedelta(hours=1)
# Checks that say a person is not (or no longer) a member: such a person is not listed
# as not enrolled, since they are not in the audience.
_NOT_LISTED = ("audience", "already_enrolled")


@dataclass(frozen=True)
class Waiting:
    """A sequence whose queue may be enrolled now."""

    sequence_id: int
    audience_id: int


def waiting(db: Connection, *, workspace_id: int, now: datetime) -> list[Waiting]:
    """The sequences whose queue may be enrolled now, in the order their first person was
    queued, after queueing the not-enrolled whose time has come and dropping the queues of
    sequences that no longer enroll by themselves. None while a CRM sync of the workspace
    is applying what it read: its later pages (a deal, a contact role) may exclude who its
    first ones added."""
    if syncing(db, workspace_id=workspace_id, now=now):
        return []
    enrollment_queue.requeue_skipped(db, workspace_id=workspace_id, now=now, due=True)
    q, s = t.enrollment_queue, t.sequences
    rows = db.execute(
        sa.select(
            s.c.id,
            s.c.auto_enroll,
            s.c.status,
            s.c.audience_id,
            s.c.auto_enroll_from,
            s.c.auto_enroll_until,
        )
        .join(q, q.c.sequence_id == s.c.id)
        .where(q.c.workspace_id == workspace_id)
        .group_by(s.c.id)
        .order_by(sa.func.min(q.c.id))
    ).all()
    found = []
    for sequence_id, on, status, audience_id, starts, ends in rows:
        if not on or status != "active" or audience_id is None or (ends and now >= ends):
            db.execute(q.delete().where(q.c.sequence_id == sequence_id))
        elif starts is None or now >= starts:
            found.append(Waiting(sequence_id, audience_id))
    return found


def run(db: Connection, *, workspace_id: int, now: datetime, limit: int | None = None) -> int:
    """Enroll, sequence by sequence, a batch of who the queue holds (of `limit` people at
    most, when given), in this one transaction; the number enrolled. (The worker gives
    each sequence's batch a transaction of its own.)"""
    return sum(
        enroll_queued(db, workspace_id=workspace_id, waiting=one, now=now, limit=limit)
        for one in waiting(db, workspace_id=workspace_id, now=now)
    )


def syncing(db: Connection, *, workspace_id: int, now: datetime) -> bool:
    """Whether a scheduled or manual CRM sync of the workspace is running."""
    g = t.crm_sync_log
    return bool(
        db.scalar(
            sa.select(
                sa.exists().where(
                    g.c.workspace_id == workspace_id,
                    g.c.status == "running",
                    g.c.trigger != "webhook",
                    g.c.started_at > now - SYNC_LEASE,
                )
            )
        )
    )


# The batch size each sequence's next pass takes, learned from the last one (per process:
# the worker's passes).
_batch_sizes: dict[int, int] = {}


def next_batch_size(size: int, held: float) -> int:
    """The next batch's size after a batch of `size` people held the lock `held` seconds:
    scaled toward HOLD_SECONDS, never above BATCH nor below LEAST_BATCH."""
    if held <= 0:
        return min(size, BATCH)
    return max(LEAST_BATCH, min(BATCH, int(size * HOLD_SECONDS / held)))


def enroll_queued(
    db: Connection,
    *,
    workspace_id: int,
    waiting: Waiting,
    now: datetime,
    limit: int | None = None,
) -> int:
    """Enroll the next batch of one sequence's queue (new members first, then the people
    asked again, each in the order they were queued); the number enrolled. Without
    `limit`, the batch is sized from how long the sequence's last batch took."""
    sequence_id, audience_id = waiting.sequence_id, waiting.audience_id
    size = limit or _batch_sizes.get(sequence_id, FIRST_BATCH)
    started = time.monotonic()
    asked = enrollment_queue.next_people(db, sequence_id=sequence_id, limit=size)
    result = enrolling.enroll(
        db,
        workspace_id=workspace_id,
        sequence_id=sequence_id,
        people=asked,
        actor=ACTOR,
        now=now,
        audience_id=audience_id,
    )
    _keep_skips(db, workspace_id=workspace_id, sequence_id=sequence_id, asked=asked, now=now)
    q = t.enrollment_queue
    db.execute(q.delete().where(q.c.sequence_id == sequence_id, in_list(q.c.person_id, asked)))
    if limit is None and len(asked) == size:
        _batch_sizes[sequence_id] = next_batch_size(size, time.monotonic() - started)
    return result.enrolled


def _keep_skips(
    db: Connection, *, workspace_id: int, sequence_id: int, asked: list[int], now: datetime
) -> None:
    """Replace the not-enrolled rows of the people just asked about by who this pass left
    out and why (staged by the enrollment), with when to ask again for a reason that ends
    with time."""
    k, r, e = t.enrollment_skips, refused_people, t.enrollments
    db.execute(k.delete().where(k.c.sequence_id == sequence_id, in_list(k.c.person_id, asked)))
    spec = definitions.spec(db, workspace_id=workspace_id, sequence_id=sequence_id)
    days = spec.ruleset.reenroll_cooldown_days
    last_end = (
        sa.select(sa.func.max(e.c.ended_at))
        .where(e.c.sequence_id == sequence_id, e.c.person_id == r.c.person_id)
        .scalar_subquery()
    )
    retry = sa.case(
        (r.c.check == "cooldown", _plus_days(db, last_end, days)),
        (r.c.check == "company_cap", sa.literal(now + CAP_RETRY, sa.DateTime)),
        else_=sa.null(),
    )
    refusals.keep_as_not_enrolled(
        db,
        workspace_id=workspace_id,
        sequence_id=sequence_id,
        now=now,
        retry_at=retry,
        leave_out=_NOT_LISTED,
    )


def _plus_days(db: Connection, moment: Any, days: int) -> Any:
    if db.dialect.name == "postgresql":
        return moment + sa.func.make_interval(0, 0, 0, days)
    return sa.func.strftime("%Y-%m-%d %H:%M:%f000", moment, f"+{days} days")


def enrolled_today(db: Connection, *, workspace_id: int, now: datetime) -> dict[int, int]:
    """Per sequence, how many people the automatic enrollment enrolled over the last day."""
    e = t.enrollments
    rows = db.execute(
        sa.select(e.c.sequence_id, sa.func.count())
        .where(
            e.c.workspace_id == workspace_id,
            e.c.enrolled_by == ACTOR,
            e.c.enrolled_at > now - timedelta(days=1),
        )
        .group_by(e.c.sequence_id)
    )
    return {sequence_id: int(count) for sequence_id, count in rows}
