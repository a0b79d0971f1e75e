"""What becomes of a claim whose worker stopped before finishing it (its lease expired).

The send path writes down two facts as they happen: that a message is about to be
handed to the server (`handed_over_at`, with its Message-ID), committed before it goes,
and that the server accepted it (`accepted_at`, with the server's answer), committed
before the next message goes, with that message's hand-over. An expired claim is then
settled by what was written:

- accepted: the server has it; it is marked sent (with the enrollment's next email),
  never sent again;
- handed over but not accepted: nobody knows whether the server has it; it is held
  `in_doubt` with the reason, until a person releases or cancels it (or, where the
  workspace asks for it, it is released automatically after some minutes);
- neither: it never left, and is claimed and sent again like any due email.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.sending.outcome import Sent, record_sent
from optout.services import events
from optout.services.enrollments.in_doubt import release_where
from optout.services.staging import claimed_emails, stage_ids

ACTOR = "worker"
STOPPED = (
    "the worker stopped after starting to hand this message to the mail server and "
    "before the server's answer was recorded, so it may or may not have been delivered"
)


def expired(now: datetime) -> sa.ColumnElement[bool]:
    o = t.outbound_emails
    return sa.and_(o.c.status == "sending", o.c.lease_until < now)


def settle_expired(db: Connection, *, now: datetime) -> tuple[int, int]:
    """Mark sent what the server accepted and hold in doubt what it may have; returns
    (marked sent, held in doubt). Expired claims that never reached the server are left
    for `claim`, which takes them again."""
    o = t.outbound_emails
    accepted = [
        (email_id, message_id)
        for email_id, message_id in db.execute(
            sa.select(o.c.id, o.c.message_id)
            .where(expired(now), o.c.accepted_at.is_not(None))
            .order_by(o.c.id)
            .with_for_update(of=o, skip_locked=True)
        )
    ]
    record_sent(db, sent=[Sent(i, m or "") for i, m in accepted], now=now)
    doubtful = list(
        db.scalars(
            sa.select(o.c.id)
            .where(expired(now), o.c.handed_over_at.is_not(None), o.c.accepted_at.is_(None))
            .order_by(o.c.id)
            .with_for_update(of=o, skip_locked=True)
        )
    )
    hold(db, email_ids=doubtful, reason=STOPPED, now=now)
    return len(accepted), len(doubtful)


def hold(db: Connection, *, email_ids: list[int], reason: str, now: datetime) -> None:
    """Hold these emails (being sent) in doubt with the reason, with an event for each."""
    if not email_ids:
        return
    o = t.outbound_emails
    stage_ids(db, claimed_emails, email_ids)
    mine = sa.and_(o.c.id.in_(sa.select(claimed_emails.c.id)), o.c.status == "sending")
    events.record_from_select(
        db,
        workspace_id=None,
        kind="email_in_doubt",
        actor=ACTOR,
        now=now,
        detail={"reason": reason},
        select=sa.select(
            o.c.workspace_id,
            o.c.id.label("email_id"),
            o.c.enrollment_id,
            o.c.person_id,
        ).where(mine),
    )
    db.execute(
        o.update()
        .where(mine)
        .values(status="in_doubt", in_doubt_at=now, lease_until=None, last_error=reason[:2000])
    )


def resend_due(db: Connection, *, now: datetime) -> int:
    """Release the in-doubt emails of workspaces that choose re-sending after N minutes
    (at least once) over holding them; returns how many were released."""
    w, o = t.workspaces, t.outbound_emails
    released = 0
    for workspace_id, minutes in db.execute(
        sa.select(w.c.id, w.c.in_doubt_resend_minutes).where(
            w.c.in_doubt_resend_minutes.is_not(None)
        )
    ):
        released += release_where(
            db,
            workspace_id=workspace_id,
            where=o.c.in_doubt_at <= now - timedelta(minutes=minutes),
            actor=ACTOR,
            note=f"sent again automatically after {minutes} minutes in doubt",
            now=now,
        )
    return released
