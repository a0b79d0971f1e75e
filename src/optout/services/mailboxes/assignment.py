"""Giving each new enrollment the mailbox it sends every step from (R37).

A person whose owner (the custom field `owner`, filled from the CRM or an import column)
is a mailbox of the sequence, by its address or its owning member's sign-in address, is
given that mailbox. The others are dealt round-robin over the sequence's active mailboxes,
weighted by what each can still send today: the weights make a short cycle of slots
(at most `CYCLE` long, interleaved), and one UPDATE gives the n-th new enrollment the
mailbox of slot n modulo the cycle. Set-based whatever the number of enrollments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services.mailboxes.sender_mailboxes import MAX_DAILY_LIMIT, local_day

OWNER_FIELD = "owner"
CYCLE = 100


def assign(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    enrollment_ids: sa.Select[Any],
    now: datetime,
) -> None:
    """Give each of `enrollment_ids` that has none a mailbox of the sequence."""
    e, p, b, sm, u = t.enrollments, t.people, t.mailboxes, t.sequence_mailboxes, t.users
    mine = sa.and_(e.c.id.in_(enrollment_ids), e.c.mailbox_id.is_(None))
    owner = sa.func.lower(p.c.fields[OWNER_FIELD].as_string())
    owned = (
        sa.select(b.c.id)
        .join(sm, sm.c.mailbox_id == b.c.id)
        .outerjoin(u, u.c.id == b.c.owner_user_id)
        .where(
            p.c.id == e.c.person_id,
            sm.c.sequence_id == sequence_id,
            sa.or_(b.c.address == owner, u.c.email == owner),
        )
        .order_by(b.c.id)
        .limit(1)
        .correlate(e)
        .scalar_subquery()
    )
    db.execute(e.update().where(mine).values(mailbox_id=owned))
    slots = _slots(db, sequence_id=sequence_id, now=now)
    if not slots:
        return  # a sequence without mailboxes sends from its From address, as it did
    waiting = t.enrollments.alias("waiting")
    ranked = (
        sa.select(waiting.c.id, sa.func.row_number().over(order_by=waiting.c.id).label("n"))
        .where(waiting.c.id.in_(enrollment_ids), waiting.c.mailbox_id.is_(None))
        .subquery()
    )
    slot = (ranked.c.n - 1) % len(slots)
    chosen = sa.case(dict(enumerate(slots)), value=slot)
    db.execute(e.update().where(e.c.id == ranked.c.id).values(mailbox_id=chosen))


def _slots(db: Connection, *, sequence_id: int, now: datetime) -> list[int]:
    """The cycle of mailbox ids, each as often as its share of today's free capacity
    (paused mailboxes only when every mailbox of the sequence is paused)."""
    b, sm = t.mailboxes, t.sequence_mailboxes
    rows = db.execute(
        sa.select(
            b.c.id, b.c.status, b.c.daily_limit, b.c.time_zone, b.c.sends_day, b.c.sends_today
        )
        .join(sm, sm.c.mailbox_id == b.c.id)
        .where(sm.c.sequence_id == sequence_id)
        .order_by(b.c.id)
    ).all()
    if not rows:
        return []
    active = [r for r in rows if r.status == "active"] or list(rows)
    free: dict[int, int] = {}
    for r in active:  # the sequence's few mailboxes, not its enrollments
        limit = MAX_DAILY_LIMIT if r.daily_limit is None else r.daily_limit
        used = r.sends_today if r.sends_day == local_day(r.time_zone, now) else 0
        free[r.id] = max(limit - used, 0)
    if not any(free.values()):
        free = dict.fromkeys(free, 1)  # all full today: spread evenly, they send tomorrow
    total = sum(free.values())
    weights = {m: max(1, round(w * CYCLE / total)) for m, w in free.items() if w > 0}
    return _interleave(weights)


def _interleave(weights: dict[int, int]) -> list[int]:
    """Smooth weighted round-robin: each id as often as its weight, spread out."""
    current = dict.fromkeys(weights, 0)
    total = sum(weights.values())
    cycle: list[int] = []
    for _ in range(total):
        for key, weight in weights.items():
            current[key] += weight
        best = max(current, key=lambda k: (current[k], -k))
        current[best] -= total
        cycle.append(best)
    return cycle
