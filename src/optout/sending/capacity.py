"""What each mailbox may still send at a claim, and the counters the claim moves (R37).

A mailbox sends at most its daily limit in its own calendar day (its time zone), and two
of its emails are claimed at least its gap apart (plus a random jitter of up to
`gap_jitter` of the gap). The counters live on the mailbox row: the day they count
(`sends_day`), the claims of that day (`sends_today`) and the earliest moment of the next
claim (`next_send_at`). The claim locks the rows of the mailboxes it may send from
before it reads them and keeps the locks until it commits, so two workers never count
the same capacity twice. A claim counts as a send: an email the server put off for later
used the mailbox's capacity as seen by the receiving server.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services.mailboxes.sender_mailboxes import local_day


@dataclass(frozen=True)
class Allowance:
    mailbox_id: int
    emails: int  # how many it may send in this claim
    day: date  # its calendar day now
    used: int  # claimed so far that day
    gap_seconds: int
    jitter: float


def lock_allowances(
    db: Connection, *, now: datetime, limit: int, workspace_id: int | None
) -> dict[int, Allowance]:
    """Lock the active mailboxes whose gap has passed (in id order; on PostgreSQL those
    another claim holds are skipped: their emails are that claim's) and say how many
    emails each may send now. Mailboxes at their limit today are left out."""
    b = t.mailboxes
    query = (
        sa.select(
            b.c.id,
            b.c.daily_limit,
            b.c.min_gap_seconds,
            b.c.gap_jitter,
            b.c.time_zone,
            b.c.sends_day,
            b.c.sends_today,
        )
        .where(b.c.status == "active", sa.or_(b.c.next_send_at.is_(None), b.c.next_send_at <= now))
        .order_by(b.c.id)
        .with_for_update(skip_locked=True)
    )
    if workspace_id is not None:
        query = query.where(b.c.workspace_id == workspace_id)
    allowed: dict[int, Allowance] = {}
    for row in db.execute(query):  # the workspace's mailboxes, a few hundred at most
        day = local_day(row.time_zone, now)
        used = row.sends_today if row.sends_day == day else 0
        room = limit if row.daily_limit is None else min(limit, row.daily_limit - used)
        if row.min_gap_seconds > 0:
            room = min(room, 1)
        if room > 0:
            allowed[row.id] = Allowance(
                row.id, room, day, used, row.min_gap_seconds, row.gap_jitter
            )
    return allowed


def count_claims(
    db: Connection,
    *,
    allowances: Mapping[int, Allowance],
    claimed: Mapping[int, int],
    now: datetime,
    rng: random.Random | None = None,
) -> None:
    """Move the counters of the mailboxes that claimed emails (`claimed`: mailbox -> how
    many), in the transaction that holds their locks."""
    draw = rng or random
    rows = []
    for mailbox_id, count in claimed.items():
        allowance = allowances.get(mailbox_id)
        if allowance is None:  # its enrollment moved to another mailbox meanwhile
            continue
        next_at = None
        if allowance.gap_seconds > 0:
            spread = allowance.gap_seconds * allowance.jitter * draw.random()
            next_at = now + timedelta(seconds=allowance.gap_seconds + spread)
        rows.append(
            {
                "b_id": mailbox_id,
                "b_day": allowance.day,
                "b_used": allowance.used + count,
                "b_next": next_at,
            }
        )
    if rows:
        b = t.mailboxes
        db.execute(
            b.update()
            .where(b.c.id == sa.bindparam("b_id"))
            .values(
                sends_day=sa.bindparam("b_day"),
                sends_today=sa.bindparam("b_used"),
                next_send_at=sa.bindparam("b_next"),
            ),
            rows,
        )
