"""Threaded follow-ups (R39): every email after an enrollment's first answers it.

A follow-up carries `In-Reply-To` and `References` with the Message-ID of the first email
of its enrollment, so it sits under that email in the recipient's mailbox; a follow-up
step without a subject of its own is sent as `Re: ` and the first email's subject. A
reply or a bounce to any email of the thread is matched by the Message-ID it names, each
of which is stored with its email (`inbound/match.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t

REPLY_PREFIX = "Re: "


@dataclass(frozen=True)
class Thread:
    """The first email of an enrollment: its Message-ID and its step's subject template."""

    message_id: str
    subject: str


def reply_subject(first_subject: str) -> str:
    """`Re: ` and the first subject, without doubling a `Re:` already there."""
    if first_subject[:3].lower() == "re:":
        return first_subject
    return REPLY_PREFIX + first_subject


def subject_of(step_subject: str, thread: Thread | None) -> str:
    """The subject template a step is sent with: its own, or the thread's reply subject."""
    if step_subject.strip() or thread is None:
        return step_subject
    return reply_subject(thread.subject)


def threads(db: Connection, *, emails: Iterable[tuple[int, int]]) -> dict[int, Thread]:
    """For each (email id, enrollment id) whose email is not its enrollment's first, the
    thread it continues (keyed by email id). The first email is the one of the earliest
    step that was handed to the server (it has a Message-ID)."""
    wanted = dict(emails)
    if not wanted:
        return {}
    o, st = t.outbound_emails, t.sequence_steps
    rows = db.execute(
        sa.select(o.c.enrollment_id, o.c.id, o.c.message_id, st.c.subject)
        .join(st, st.c.id == o.c.step_id)
        .where(o.c.enrollment_id.in_(set(wanted.values())), o.c.message_id.is_not(None))
        .order_by(o.c.enrollment_id, st.c.position, o.c.id)
    ).all()
    first: dict[int, tuple[int, Thread]] = {}
    for enrollment_id, email_id, message_id, subject in rows:
        first.setdefault(enrollment_id, (email_id, Thread(message_id, subject)))
    return {
        email_id: first[enrollment_id][1]
        for email_id, enrollment_id in wanted.items()
        if enrollment_id in first and first[enrollment_id][0] != email_id
    }
