"""Removing a sender mailbox (R37): the active enrollments that send from it move in
the same transaction, to a mailbox the admin names or dealt over the other mailboxes of
each of their sequences, so no active enrollment is ever left without a mailbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput
from optout.services import events
from optout.services.mailboxes import sender_mailboxes
from optout.services.mailboxes.assignment import assign


@dataclass(frozen=True)
class Removed:
    address: str
    moved_to: str | None  # the mailbox its enrollments went to; None: none moved, or dealt
    enrollments_moved: int
    round_robin: bool = False  # dealt over the other mailboxes of each of their sequences


def active_enrollments(db: Connection, *, mailbox_id: int) -> int:
    """How many enrollments that have not ended send from the mailbox."""
    e = t.enrollments
    return int(
        db.scalar(
            sa.select(sa.func.count()).where(
                e.c.mailbox_id == mailbox_id, e.c.status.in_(t.ACTIVE_STATUSES)
            )
        )
        or 0
    )


def remove(
    db: Connection,
    *,
    workspace_id: int,
    address: str,
    actor: str,
    now: datetime,
    move_to: str | None = None,
    round_robin: bool = False,
) -> Removed:
    """Remove a mailbox. Its active enrollments move to `move_to` (which then sends for
    its sequences too), or with `round_robin` are dealt over the other mailboxes of each
    of their sequences as new enrollments are; with neither, a mailbox that active
    enrollments send from is refused (Conflict). All in the caller's transaction, so no
    active enrollment is ever left without a mailbox."""
    current = sender_mailboxes.row(db, workspace_id=workspace_id, address=address)
    e, sm = t.enrollments, t.sequence_mailboxes
    theirs = sa.and_(e.c.mailbox_id == current["id"], e.c.status.in_(t.ACTIVE_STATUSES))
    active = active_enrollments(db, mailbox_id=current["id"])
    target: dict[str, Any] | None = None
    if move_to is not None and round_robin:
        raise InvalidInput("say either the mailbox the enrollments move to, or round-robin")
    if move_to is not None:
        target = sender_mailboxes.row(db, workspace_id=workspace_id, address=move_to)
        if target["id"] == current["id"]:
            raise InvalidInput("a mailbox cannot be moved to itself")
    if active and target is None and not round_robin:
        raise Conflict(
            f"{active} active enrollment(s) send from {current['address']}: say which "
            "mailbox they move to, or deal them over their sequences' other mailboxes"
        )
    moved = 0
    if target is not None:
        moved = db.execute(e.update().where(theirs).values(mailbox_id=target["id"])).rowcount
        already = sa.select(sm.c.sequence_id).where(sm.c.mailbox_id == target["id"])
        db.execute(
            sm.insert().from_select(
                ["sequence_id", "mailbox_id"],
                sa.select(sm.c.sequence_id, sa.literal(target["id"], sa.Integer)).where(
                    sm.c.mailbox_id == current["id"], sm.c.sequence_id.not_in(already)
                ),
            )
        )
    db.execute(sm.delete().where(sm.c.mailbox_id == current["id"]))
    if round_robin and active:
        moved = _deal(db, workspace_id=workspace_id, mailbox_id=current["id"], now=now)
    db.execute(t.mailboxes.delete().where(t.mailboxes.c.id == current["id"]))
    events.record(
        db,
        workspace_id=workspace_id,
        kind="mailbox_removed",
        actor=actor,
        now=now,
        detail={
            "mailbox": current["address"],
            "moved_to": target["address"] if target else None,
            "round_robin": round_robin and bool(active),
            "enrollments_moved": moved,
        },
    )
    return Removed(
        current["address"],
        target["address"] if target else None,
        moved,
        round_robin=round_robin and bool(active),
    )


def _deal(db: Connection, *, workspace_id: int, mailbox_id: int, now: datetime) -> int:
    """Give the mailbox's active enrollments (it sends for no sequence any more) the
    other mailboxes of their sequences, each sequence's as its new enrollments get them
    (the person's owner's mailbox first, then round-robin by free capacity); Conflict
    naming the sequences that have no other mailbox."""
    e, sm, s = t.enrollments, t.sequence_mailboxes, t.sequences
    theirs = sa.and_(e.c.mailbox_id == mailbox_id, e.c.status.in_(t.ACTIVE_STATUSES))
    sequence_ids = list(db.scalars(sa.select(e.c.sequence_id).where(theirs).distinct()))
    alone = list(
        db.scalars(
            sa.select(s.c.name)
            .where(
                s.c.id.in_(sequence_ids),
                ~sa.exists().where(sm.c.sequence_id == s.c.id),
            )
            .order_by(s.c.name)
        )
    )
    if alone:
        names = ", ".join(f"“{name}”" for name in alone)
        raise Conflict(
            f"the sequence(s) {names} send from no other mailbox: choose the mailbox their "
            "enrollments move to"
        )
    moved = db.execute(e.update().where(theirs).values(mailbox_id=None)).rowcount
    for sequence_id in sequence_ids:  # the few sequences, not their enrollments
        moving = t.enrollments.alias("moving")
        assign(
            db,
            workspace_id=workspace_id,
            sequence_id=sequence_id,
            enrollment_ids=sa.select(moving.c.id).where(
                moving.c.sequence_id == sequence_id,
                moving.c.mailbox_id.is_(None),
                moving.c.status.in_(t.ACTIVE_STATUSES),
            ),
            now=now,
        )
    return int(moved)
