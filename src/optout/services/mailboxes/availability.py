"""What a person's mailbox means for their next email, in the admin's words (R37, R40):
paused (and why), at its daily limit, or sending (today's sends against its limit)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t

if TYPE_CHECKING:  # a person with no active enrollment (what explain mostly asks) needs none
    from optout.services.mailboxes.sender_mailboxes import Mailbox


def for_person(
    db: Connection, *, workspace_id: int, person_id: int, sequence_id: int, now: datetime
) -> str | None:
    """Why the person's next email from this sequence waits on its mailbox, if it does:
    the mailbox of their active enrollment is paused, or at its limit for today."""
    e = t.enrollments
    mailbox_id = db.scalar(
        sa.select(e.c.mailbox_id).where(
            e.c.workspace_id == workspace_id,
            e.c.person_id == person_id,
            e.c.sequence_id == sequence_id,
            e.c.status.in_(t.ACTIVE_STATUSES),
        )
    )
    if mailbox_id is None:
        return None
    from optout.services.mailboxes.sender_mailboxes import listing

    (box,) = listing(db, workspace_id=workspace_id, now=now, mailbox_id=mailbox_id)
    return waiting_note(box)


def waiting_note(box: Mailbox) -> str | None:
    if box.status == "paused":
        return (
            f"Sent from {box.address}, which is paused ({box.pause_reason}): its emails wait "
            "until an admin resumes it."
        )
    if box.daily_limit is not None and box.sent_today >= box.daily_limit:
        return (
            f"Sent from {box.address}, at {box.sent_today} of {box.daily_limit} today: the "
            f"next email waits for its next day ({box.time_zone})."
        )
    return None


def paused(db: Connection, *, workspace_id: int, now: datetime) -> list[Mailbox]:
    """The workspace's paused mailboxes, for the dashboard."""
    from optout.services.mailboxes.sender_mailboxes import listing

    return [m for m in listing(db, workspace_id=workspace_id, now=now) if m.status == "paused"]
