"""What the matched messages of one transaction change, gathered while each message is
read and applied together once they are all through (R4-R7, R35, R36).

Reading a message (matching it, counting a transient bounce) asks nothing of the
database by itself (`match.match_all`, `known`); what it changes beyond its own row (its
events, the enrollment a reply ends, the address it suppresses, the activity of a reply)
is written here for the whole batch in a few set-based statements, so a hundred messages
cost about what one does. What a
message changed is told back to it through its `Ending` and `Ticket`, filled in by
`apply`, so each message's actions still say what happened to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services.activities import Activity
from optout.services.enforcement import end_enrollments
from optout.services.suppression import optouts

ACTOR = "inbound"
_REFS = ("person_id", "company_id", "sequence_id", "enrollment_id", "email_id", "exclusion_id")

# An action of a message whose words wait for what the batch did (a count of enrollments
# ended); `words` reads them once `apply` has run.
Later = Callable[[], str]


@dataclass(eq=False)
class Ending:
    """A reply's end of the enrollment it answers; `ended` is False when it had ended."""

    enrollment_id: int
    ended: bool = False


@dataclass(eq=False)
class Ticket:
    """A suppression one message asked for, and what it did once applied."""

    request: optouts.Suppression
    done: optouts.Suppressed | None = None

    @property
    def result(self) -> optouts.Suppressed:
        if self.done is None:
            raise RuntimeError("the batch's suppressions are not applied yet")
        return self.done


@dataclass
class Effects:
    """What the messages of one workspace change, in the order they asked for it."""

    events: list[dict[str, Any]] = field(default_factory=list)
    endings: list[Ending] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)

    def event(
        self, kind: str, *, rule: str | None, detail: dict[str, Any], **refs: int | None
    ) -> None:
        self.events.append(
            {"kind": kind, "rule": rule, "detail": detail} | {r: refs.get(r) for r in _REFS}
        )

    def end_reply(self, enrollment_id: int) -> Ending:
        ending = Ending(enrollment_id)
        self.endings.append(ending)
        return ending

    def suppress(self, request: optouts.Suppression) -> Ticket:
        ticket = Ticket(request)
        self.tickets.append(ticket)
        return ticket

    def stamp(self, inbound_id: int) -> None:
        """Name the stored message on every event it caused (once it has its row)."""
        for event in self.events:
            event["detail"]["inbound_id"] = inbound_id

    def extend(self, other: Effects) -> None:
        self.events.extend(other.events)
        self.endings.extend(other.endings)
        self.tickets.extend(other.tickets)
        self.activities.extend(other.activities)


def apply(db: Connection, *, workspace_id: int, effects: Effects, now: datetime) -> None:
    """Write what the batch's messages changed, in the order a message at a time did: the
    messages' events, the enrollments the replies end, then the suppressions. The
    activity (`effects.activities`) is the caller's to record."""
    if effects.events:
        rows = [
            {"workspace_id": workspace_id, "at": now, "actor": ACTOR} | e for e in effects.events
        ]
        db.execute(t.events.insert(), rows)
    if effects.endings:
        _end_replied(db, workspace_id=workspace_id, endings=effects.endings, now=now)
    if effects.tickets:
        done = optouts.suppress_all(
            db,
            workspace_id=workspace_id,
            requests=[ticket.request for ticket in effects.tickets],
            now=now,
        )
        for ticket, result in zip(effects.tickets, done, strict=True):
            ticket.done = result


def _end_replied(
    db: Connection, *, workspace_id: int, endings: list[Ending], now: datetime
) -> None:
    """R5: end only the enrollments answered; the first reply to one ends it."""
    e = t.enrollments
    ids = {ending.enrollment_id for ending in endings}
    active = set(
        db.scalars(sa.select(e.c.id).where(e.c.id.in_(ids), e.c.status.in_(t.ACTIVE_STATUSES)))
    )
    for ending in endings:
        ending.ended = ending.enrollment_id in active
        active.discard(ending.enrollment_id)
    end_enrollments(
        db,
        workspace_id=workspace_id,
        targets=sa.select(e.c.id.label("enrollment_id")).where(e.c.id.in_(ids)),
        status="replied",
        reason="replied by email",
        rule="reply",
        actor=ACTOR,
        now=now,
    )


def words(actions: list[str | Later]) -> list[str]:
    """A message's actions in words, once the batch is applied."""
    return [action if isinstance(action, str) else action() for action in actions]
