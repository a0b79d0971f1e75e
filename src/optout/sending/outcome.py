"""Recording what delivery did: sent, retry later, or give up (R26, R7, R35).

Sent emails are finalized in one transaction per batch: the email is marked
sent, the activity is recorded as our own (source `optout`, so it never trips
activity rules, R21), and each enrollment moves to its next email or finishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services import events
from optout.services.enforcement import end_enrollments
from optout.services.send_queue.schedule import queue_next
from optout.services.staging import claimed_emails, stage_ids
from optout.services.suppression import optouts

ACTOR = "worker"
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Sent:
    email_id: int
    message_id: str


def record_sent(db: Connection, *, sent: Sequence[Sent], now: datetime) -> None:
    if not sent:
        return
    o, e, p, c, st = t.outbound_emails, t.enrollments, t.people, t.companies, t.sequence_steps
    db.execute(
        o.update()
        .where(o.c.id == sa.bindparam("b_id"), o.c.status == "sending")
        .values(status="sent", sent_at=now, message_id=sa.bindparam("b_mid"), lease_until=None),
        [{"b_id": s.email_id, "b_mid": s.message_id} for s in sent],
    )
    stage_ids(db, claimed_emails, [s.email_id for s in sent])
    done = sa.select(claimed_emails.c.id)
    mine = o.c.id.in_(done)
    db.execute(
        t.activities.insert().from_select(
            [
                "workspace_id",
                "person_id",
                "company_id",
                "kind",
                "source",
                "sequence_id",
                "occurred_at",
            ],
            sa.select(
                o.c.workspace_id,
                o.c.person_id,
                p.c.company_id,
                sa.literal("email_sent"),
                sa.literal("optout"),
                e.c.sequence_id,
                sa.literal(now, sa.DateTime),
            )
            .join(e, e.c.id == o.c.enrollment_id)
            .join(p, p.c.id == o.c.person_id)
            .where(mine),
        )
    )
    recipients = sa.select(o.c.person_id).where(mine)
    db.execute(
        p.update()
        .where(p.c.id.in_(recipients))
        .values(last_emailed_at=now, last_activity_any_at=now)
    )
    touched = sa.select(p.c.company_id).where(p.c.id.in_(recipients))
    if db.dialect.name == "postgresql":
        # Workers sending to people of the same companies take those rows in one order,
        # so two of them never wait on each other (a deadlock would lose this record).
        # FOR NO KEY UPDATE, the lock the update below takes: FOR UPDATE would also wait
        # for the key-share locks the activities inserted above hold on these rows (the
        # foreign key), taken in no particular order.
        db.execute(
            sa.select(c.c.id)
            .where(c.c.id.in_(touched))
            .order_by(c.c.id)
            .with_for_update(key_share=True)
        )
    db.execute(c.update().where(c.c.id.in_(touched)).values(last_activity_any_at=now))
    events.record_from_select(
        db,
        workspace_id=None,
        kind="email_sent",
        actor=ACTOR,
        now=now,
        select=sa.select(
            o.c.workspace_id,
            o.c.id.label("email_id"),
            o.c.enrollment_id,
            o.c.person_id,
            e.c.sequence_id,
        )
        .join(e, e.c.id == o.c.enrollment_id)
        .where(mine),
    )
    db.execute(
        e.update()
        .where(e.c.id.in_(sa.select(o.c.enrollment_id).where(mine)), e.c.status == "not_started")
        .values(status="in_progress")
    )
    groups = db.execute(
        sa.select(e.c.workspace_id, e.c.sequence_id, st.c.position)
        .join(o, o.c.enrollment_id == e.c.id)
        .join(st, st.c.id == o.c.step_id)
        .where(mine)
        .distinct()
    ).all()
    for workspace_id, sequence_id, position in groups:
        queue_next(
            db,
            workspace_id=workspace_id,
            sequence_id=sequence_id,
            enrollment_ids=sa.select(o.c.enrollment_id)
            .join(st, st.c.id == o.c.step_id)
            .where(
                mine,
                st.c.sequence_id == sequence_id,
                st.c.position == position,
                o.c.workspace_id == workspace_id,
            ),
            after=position,
            now=now,
            actor=ACTOR,
        )


# The two statements run once per email, built once: building a statement and its cache
# key again for every email cost the worker more than SQLite's work on the row.
_o = t.outbound_emails
_HANDOVER = (
    _o.update()
    .where(
        _o.c.id == sa.bindparam("b_id"),
        _o.c.status == "sending",
        _o.c.attempts == sa.bindparam("b_attempts"),
    )
    .values(handed_over_at=sa.bindparam("b_at"), message_id=sa.bindparam("b_mid"))
)
_ACCEPTED = (
    _o.update()
    .where(_o.c.id == sa.bindparam("b_id"), _o.c.status == "sending")
    .values(accepted_at=sa.bindparam("b_at"), smtp_reply=sa.bindparam("b_reply"))
)


def record_handover(
    db: Connection, *, email_id: int, attempts: int, message_id: str, now: datetime
) -> bool:
    """The message is about to go to the server: from here on, a worker that dies leaves
    it in doubt rather than due again. Written with its Message-ID, which every later
    attempt reuses. False when the claim is no longer this worker's (its lease ran out
    and another worker claimed the email, which counts one more attempt): do not send."""
    mine = db.execute(
        _HANDOVER, {"b_id": email_id, "b_attempts": attempts, "b_at": now, "b_mid": message_id}
    )
    return mine.rowcount == 1


def record_accepted(db: Connection, *, email_id: int, reply: str, now: datetime) -> None:
    """The server accepted the message: it is never sent again, whatever happens next."""
    db.execute(_ACCEPTED, {"b_id": email_id, "b_at": now, "b_reply": reply[:2000]})


def retry_later(db: Connection, *, email_id: int, attempts: int, error: str, now: datetime) -> bool:
    """A temporary failure: queue the email again with a growing delay, or give up after
    MAX_ATTEMPTS. Returns True when it will be retried."""
    o = t.outbound_emails
    if attempts >= MAX_ATTEMPTS:
        give_up(
            db, email_id=email_id, reason=f"gave up after {attempts} attempts: {error}", now=now
        )
        return False
    delay = timedelta(minutes=2 ** min(attempts, 8))
    db.execute(
        o.update()
        .where(o.c.id == email_id, o.c.status == "sending")
        .values(
            status="queued",
            due_at=now + delay,
            lease_until=None,
            last_error=error[:2000],
            handed_over_at=None,
            accepted_at=None,
            smtp_reply=None,
        )
    )
    return True


def give_up(db: Connection, *, email_id: int, reason: str, now: datetime) -> None:
    """The email cannot be delivered: cancel it and end its enrollment with the reason."""
    o = t.outbound_emails
    row = db.execute(sa.select(o).where(o.c.id == email_id)).mappings().one()
    # Back to queued so that ending the enrollment cancels it with the reason, like any other.
    db.execute(
        o.update()
        .where(o.c.id == email_id)
        .values(status="queued", last_error=reason[:2000], lease_until=None)
    )
    end_enrollments(
        db,
        workspace_id=row["workspace_id"],
        targets=sa.select(sa.literal(row["enrollment_id"], sa.Integer).label("enrollment_id")),
        status="unenrolled",
        reason=reason,
        rule="delivery_failed",
        actor=ACTOR,
        now=now,
    )


def hard_bounce(db: Connection, *, email_id: int, address: str, reason: str, now: datetime) -> None:
    """The receiving server refused the address permanently: it is never sent to again (R7)."""
    o = t.outbound_emails
    workspace_id = db.execute(sa.select(o.c.workspace_id).where(o.c.id == email_id)).scalar_one()
    # Back to queued so that the bounce cancels it along with the person's other emails.
    db.execute(
        o.update()
        .where(o.c.id == email_id)
        .values(status="queued", last_error=reason[:2000], lease_until=None)
    )
    optouts.bounce(
        db, workspace_id=workspace_id, email=address, actor=ACTOR, now=now, reason=reason
    )
