"""For one person and a sequence that enrolls by itself (R41): will the next pass enroll
them, or what stops it, in the words of the sequence's not-enrolled view. Explain shows
it beside the decision it is drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import Decision
from optout.services.enrollments.refusal_words import reason_words

# The check that says whether a person is a member of the audience.
_MEMBERSHIP = "audience"


@dataclass(frozen=True)
class Outlook:
    """For one person and a sequence that enrolls by itself: will the next pass enroll
    them, and if not, why (`reason`, in the not-enrolled view's words)."""

    will_enroll: bool
    reason: str

    @property
    def words(self) -> str:
        if self.will_enroll:
            return "will be enrolled automatically" + (f" {self.reason}" if self.reason else "")
        return f"will not be enrolled automatically: {self.reason}"


def outlook(
    db: Connection,
    *,
    sequence_id: int,
    person_id: int,
    decision: Decision,
    exclusion_names: dict[int, str],
    now: datetime,
) -> Outlook | None:
    """None when the sequence does not enroll by itself. `decision` is the person's
    enrollment decision from the sequence's audience."""
    s, e = t.sequences, t.enrollments
    row = db.execute(
        sa.select(s.c.auto_enroll, s.c.status, s.c.auto_enroll_from, s.c.auto_enroll_until).where(
            s.c.id == sequence_id
        )
    ).one()
    on, sequence_status, starts, ends = row
    if not on:
        return None
    if ends is not None and now >= ends:
        return Outlook(False, f"automatic enrollment ended on {ends:%Y-%m-%d %H:%M} UTC")
    outcomes = decision.outcomes
    if any(o.blocks and o.check == _MEMBERSHIP for o in outcomes):
        return Outlook(False, "not in its audience")
    first = decision.primary_reason
    if first is not None:
        name = exclusion_names.get(first.exclusion_id) if first.exclusion_id else None
        return Outlook(False, reason_words(first.check, name))
    if sequence_status != "active":
        return Outlook(False, f"the sequence is {sequence_status}")
    if not any(
        db.scalar(
            sa.select(
                sa.exists().where(
                    table.c.sequence_id == sequence_id, table.c.person_id == person_id
                )
            )
        )
        for table in (t.enrollment_queue, t.enrollment_skips)
    ) and db.scalar(
        sa.select(sa.exists().where(e.c.sequence_id == sequence_id, e.c.person_id == person_id))
    ):
        return Outlook(
            False,
            "they were in this sequence before; automatic enrollment does not bring back "
            "someone whose enrollment ended on its own or by hand",
        )
    if starts is not None and now < starts:
        return Outlook(True, f"from {starts:%Y-%m-%d %H:%M} UTC")
    return Outlook(True, "")
