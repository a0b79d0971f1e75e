"""Who an actively enrolling sequence is to enroll next (`enrollment_queue`), and the
writes that put people there or take them out. Enrolling them is
`services.enrollments.automatic`; this module only keeps the queue, so the decision index
can fill it in the writing transaction without importing the enrollment use-cases.

A person is queued for a sequence that enrolls by itself when:
- they come to be a member of its audience (`queue_members`, from the index's flush);
- they sit in its not-enrolled view and something that may have stopped them changed:
  their own row, their company, a deal or a role (`requeue_skipped` with the people), a
  rule (`requeue_skipped` for everyone), or the time their reason ends (`retry_at`);
- an exclusion just ended their enrollment (`queue_ended`): the pass then lists them as
  not enrolled, with the rule, and enrolls them again once nothing stops them.
One row per sequence and person: queuing twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.db.inserts import insert_ignoring_duplicates
from optout.services.id_lists import ByLength, In


def _enrolling(workspace_id: int | sa.BindParameter[int]) -> Any:
    """The workspace's sequences that enroll by themselves (their dates are read when
    the queue is emptied)."""
    s = t.sequences
    return sa.and_(
        s.c.workspace_id == workspace_id,
        s.c.auto_enroll.is_(True),
        s.c.status == "active",
        s.c.audience_id.is_not(None),
    )


def _insert(db: Connection, select: sa.Select[Any]) -> None:
    """Queue the (workspace, sequence, person, queued_at) rows of `select`; a pair already
    queued stays where it is."""
    statement = insert_ignoring_duplicates(db, t.enrollment_queue)
    db.execute(
        statement.from_select(["workspace_id", "sequence_id", "person_id", "queued_at"], select)
    )


def queue_members(
    db: Connection, *, workspace_id: int, audience_id: int, people: sa.Select[Any], now: datetime
) -> None:
    """Queue `people`, new members of the audience, for each sequence that enrolls from it
    by itself. The sequences are read first: none, and `people` is not read at all; each,
    one insert of `people` (not a join that reads the sequences again for every person)."""
    s = t.sequences
    new = people.subquery()
    for sequence_id in db.scalars(
        sa.select(s.c.id).where(s.c.audience_id == audience_id, _enrolling(workspace_id))
    ).all():
        _insert(
            db,
            sa.select(
                sa.literal(workspace_id, sa.Integer),
                sa.literal(sequence_id, sa.Integer),
                new.c[0],
                sa.literal(now, sa.DateTime),
            )
            .select_from(new)
            .order_by(new.c[0]),
        )


def forget_leavers(db: Connection, *, audience_id: int, people: sa.Select[Any]) -> None:
    """`people` left the audience: out of its sequences' queue and not-enrolled views."""
    s, q, k = t.sequences, t.enrollment_queue, t.enrollment_skips
    its = sa.select(s.c.id).where(s.c.audience_id == audience_id)
    db.execute(q.delete().where(q.c.sequence_id.in_(its), q.c.person_id.in_(people)))
    db.execute(k.delete().where(k.c.sequence_id.in_(its), k.c.person_id.in_(people)))


def requeue_skipped(
    db: Connection,
    *,
    workspace_id: int,
    now: datetime,
    people: sa.Select[Any] | None = None,
    due: bool = False,
) -> None:
    """Queue again the people of the not-enrolled views of the sequences that enroll by
    themselves: those among `people` (None: all of them), or, with `due`, those whose
    reason ends with time and whose time has come."""
    s, k = t.sequences, t.enrollment_skips
    query = (
        sa.select(
            sa.literal(workspace_id, sa.Integer),
            k.c.sequence_id,
            k.c.person_id,
            sa.literal(now, sa.DateTime),
        )
        .join(s, s.c.id == k.c.sequence_id)
        .where(_enrolling(workspace_id))
        .order_by(k.c.id)
    )
    if people is not None:
        query = query.where(k.c.person_id.in_(people))
    if due:
        query = query.where(k.c.retry_at <= now)
    _insert(db, query)


def requeue_skipped_of(
    db: Connection, *, workspace_id: int, now: datetime, people: Sequence[int]
) -> None:
    """`requeue_skipped` for a few people given by id (a write's flush), in a statement
    built once for their number."""
    _REQUEUE_OF.execute(db, set(people), workspace_id=workspace_id, now=now)


def _requeue_of(people: In, db: Connection) -> Any:
    s, k = t.sequences, t.enrollment_skips
    workspace_id = sa.bindparam("workspace_id", type_=sa.Integer)
    query = (
        sa.select(
            workspace_id,
            k.c.sequence_id,
            k.c.person_id,
            sa.bindparam("now", type_=sa.DateTime),
        )
        .join(s, s.c.id == k.c.sequence_id)
        .where(_enrolling(workspace_id))
        .where(people(k.c.person_id))
        .order_by(k.c.id)
    )
    return insert_ignoring_duplicates(db, t.enrollment_queue).from_select(
        ["workspace_id", "sequence_id", "person_id", "queued_at"], query
    )


_REQUEUE_OF = ByLength(_requeue_of)


def queue_ended(
    db: Connection, *, workspace_id: int, enrollment_ids: sa.Select[Any], now: datetime
) -> None:
    """Queue the people of these just-ended enrollments again in their sequence, when it
    enrolls by itself: the pass lists them as not enrolled with the reason, and enrolls
    them once nothing stops them."""
    s, e = t.sequences, t.enrollments
    _insert(
        db,
        sa.select(
            sa.literal(workspace_id, sa.Integer),
            e.c.sequence_id,
            e.c.person_id,
            sa.literal(now, sa.DateTime),
        )
        .join(s, s.c.id == e.c.sequence_id)
        .where(e.c.id.in_(enrollment_ids), _enrolling(workspace_id))
        .order_by(e.c.id),
    )


def requeue_capped(
    db: Connection, *, workspace_id: int, enrollment_ids: sa.Select[Any], now: datetime
) -> None:
    """These enrollments just ended: the people their sequence's company cap left out at
    the same companies are queued again, since a place may have opened."""
    s, e, k, p, theirs = t.sequences, t.enrollments, t.enrollment_skips, t.people, t.people.alias()
    ended = (
        sa.select(e.c.sequence_id, theirs.c.company_id)
        .join(theirs, theirs.c.id == e.c.person_id)
        .where(e.c.id.in_(enrollment_ids), theirs.c.company_id.is_not(None))
        .distinct()
        .subquery()
    )
    _insert(
        db,
        sa.select(
            sa.literal(workspace_id, sa.Integer),
            k.c.sequence_id,
            k.c.person_id,
            sa.literal(now, sa.DateTime),
        )
        .select_from(ended)
        .join(p, p.c.company_id == ended.c.company_id)
        .join(k, sa.and_(k.c.person_id == p.c.id, k.c.sequence_id == ended.c.sequence_id))
        .join(s, s.c.id == k.c.sequence_id)
        .where(k.c.check == "company_cap", _enrolling(workspace_id))
        .order_by(k.c.id),
    )


def next_people(db: Connection, *, sequence_id: int, limit: int) -> list[int]:
    """Up to `limit` people of the sequence's queue, in the order they were queued: first
    those asked for the first time (new members), then those asked again (people of the
    not-enrolled view whose reason may have gone)."""
    q, k = t.enrollment_queue, t.enrollment_skips
    again = sa.exists(
        sa.select(1).where(k.c.sequence_id == sequence_id, k.c.person_id == q.c.person_id)
    )
    mine = sa.select(q.c.person_id).where(q.c.sequence_id == sequence_id).order_by(q.c.id)
    first = list(db.scalars(mine.where(~again).limit(limit)))
    if len(first) == limit:
        return first
    return first + list(db.scalars(mine.where(again).limit(limit - len(first))))


def people_of_companies(workspace_id: int, companies: sa.Select[Any]) -> sa.Select[Any]:
    p = t.people
    return sa.select(p.c.id).where(p.c.workspace_id == workspace_id, p.c.company_id.in_(companies))


def people_of_groups(workspace_id: int, groups: sa.Select[Any]) -> sa.Select[Any]:
    p, c = t.people, t.companies
    return (
        sa.select(p.c.id)
        .join(c, c.c.id == p.c.company_id)
        .where(p.c.workspace_id == workspace_id, c.c.group_id.in_(groups))
    )
