"""The review queue: inbound messages a person has to decide on, and the decisions.

Two kinds of message wait here: unsubscribe replies flagged for review because the
workspace switched the automatic opt-out off (R4), and messages that matched no
enrollment (kept, never dropped). Each gets one decision: opt the address out, dismiss
it, or attach it to a person of the workspace. The decision is written on the message
(who, when, what) and as an event on the person's history (R35), once: a message
decided already cannot be decided again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound
from optout.normalize import normalize_email
from optout.services import events
from optout.services.directory import people
from optout.services.suppression import optouts

DECISIONS = ("opted_out", "dismissed", "attached")
EXCERPT = 2_000


@dataclass(frozen=True)
class ReviewItem:
    id: int
    received_at: datetime
    from_address: str
    subject: str
    kind: str  # reply, unsubscribe, auto_reply, bounce, unclassified
    why: str  # why it waits for a decision, in words
    text: str  # what the sender wrote (the new text of a reply)
    reason: str  # what inbound processing said about it
    person_id: int | None
    person_email: str | None
    decision: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None

    @property
    def address(self) -> str:
        """The address an opt-out would hold for: the person's, else the sender's."""
        return self.person_email or self.from_address


def _waiting(m: sa.Table) -> sa.ColumnElement[bool]:
    """In the queue: flagged or unmatched, and not decided yet."""
    return sa.and_(
        sa.or_(m.c.review_needed.is_(True), m.c.match_by.is_(None)), m.c.reviewed_at.is_(None)
    )


def _query(workspace_id: int) -> sa.Select[Any]:
    m, p = t.inbound_messages, t.people
    return (
        sa.select(
            m.c.id,
            m.c.received_at,
            m.c.from_address,
            m.c.subject,
            m.c.kind,
            m.c.new_text,
            m.c.reason,
            m.c.review_needed,
            m.c.person_id,
            p.c.email.label("person_email"),
            m.c.review_decision,
            m.c.reviewed_by,
            m.c.reviewed_at,
        )
        .outerjoin(p, p.c.id == m.c.person_id)
        .where(m.c.workspace_id == workspace_id)
    )


def _item(row: RowMapping) -> ReviewItem:
    why = (
        "asked to unsubscribe; automatic opt-out is off"
        if row["review_needed"]
        else "matched no enrollment"
    )
    return ReviewItem(
        id=row["id"],
        received_at=row["received_at"],
        from_address=row["from_address"],
        subject=row["subject"],
        kind=row["kind"],
        why=why,
        text=(row["new_text"] or "")[:EXCERPT],
        reason=row["reason"],
        person_id=row["person_id"],
        person_email=row["person_email"],
        decision=row["review_decision"],
        reviewed_by=row["reviewed_by"],
        reviewed_at=row["reviewed_at"],
    )


def pending(db: Connection, *, workspace_id: int, limit: int = 50) -> list[ReviewItem]:
    """Messages waiting for a decision, oldest first (first come, first decided)."""
    m = t.inbound_messages
    query = _query(workspace_id).where(_waiting(m)).order_by(m.c.id).limit(limit)
    return [_item(row) for row in db.execute(query).mappings()]


def count_pending(db: Connection, *, workspace_id: int) -> int:
    m = t.inbound_messages
    query = sa.select(sa.func.count()).where(m.c.workspace_id == workspace_id, _waiting(m))
    return int(db.scalar(query) or 0)


def decided(db: Connection, *, workspace_id: int, limit: int = 20) -> list[ReviewItem]:
    """The latest decisions, newest first."""
    m = t.inbound_messages
    query = (
        _query(workspace_id)
        .where(m.c.reviewed_at.is_not(None))
        .order_by(m.c.reviewed_at.desc(), m.c.id.desc())
        .limit(limit)
    )
    return [_item(row) for row in db.execute(query).mappings()]


def get(db: Connection, *, workspace_id: int, message_id: int) -> ReviewItem:
    m = t.inbound_messages
    query = _query(workspace_id).where(
        m.c.id == message_id, sa.or_(_waiting(m), m.c.reviewed_at.is_not(None))
    )
    row = db.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no message {message_id} waiting for review in this workspace")
    return _item(row)


def _decide(
    db: Connection,
    *,
    workspace_id: int,
    item: ReviewItem,
    decision: str,
    actor: str,
    now: datetime,
    person_id: int | None,
) -> None:
    """Write the decision on the message, unless someone decided first."""
    m = t.inbound_messages
    values: dict[str, Any] = {
        "reviewed_at": now,
        "reviewed_by": actor,
        "review_decision": decision,
    }
    if person_id is not None and (decision == "attached" or item.person_id is None):
        values["person_id"] = person_id
        values["match_by"] = sa.func.coalesce(m.c.match_by, "review")
    changed = db.execute(
        m.update()
        .where(m.c.id == item.id, m.c.workspace_id == workspace_id, m.c.reviewed_at.is_(None))
        .values(**values)
    ).rowcount
    if changed != 1:
        raise Conflict(
            f"this message was decided already ({item.decision or 'decided'} by "
            f"{item.reviewed_by or 'someone else'})"
        )
    events.record(
        db,
        workspace_id=workspace_id,
        kind="inbound_reviewed",
        actor=actor,
        now=now,
        person_id=person_id,
        detail={
            "inbound_id": item.id,
            "decision": decision,
            "from": item.from_address,
            "subject": item.subject[:200],
        },
    )


def _open(db: Connection, workspace_id: int, message_id: int) -> ReviewItem:
    item = get(db, workspace_id=workspace_id, message_id=message_id)
    if item.decision is not None:
        raise Conflict(f"this message was decided already ({item.decision} by {item.reviewed_by})")
    return item


def opt_out(
    db: Connection, *, workspace_id: int, message_id: int, actor: str, now: datetime
) -> optouts.Suppressed:
    """Opt the address out (the person's, else the sender's), with the message as
    evidence, through the same opt-out as every other channel (R1, R2)."""
    item = _open(db, workspace_id, message_id)
    address = item.address
    try:
        address = normalize_email(address).address
    except InvalidInput as exc:
        raise InvalidInput(
            f"the sender's address {item.from_address!r} cannot be opted out: {exc.message}; "
            "attach the message to a person first"
        ) from exc
    done = optouts.opt_out(
        db,
        workspace_id=workspace_id,
        email=address,
        actor=actor,
        channel="reply",
        now=now,
        reason="asked to unsubscribe in a reply (decided in the review queue)",
        evidence=item.text or item.subject,
    )
    ids = people.ids_by_email(db, workspace_id=workspace_id, email=address)
    _decide(
        db,
        workspace_id=workspace_id,
        item=item,
        decision="opted_out",
        actor=actor,
        now=now,
        person_id=item.person_id or (ids[0] if ids else None),
    )
    return done


def dismiss(
    db: Connection, *, workspace_id: int, message_id: int, actor: str, now: datetime
) -> None:
    """Nothing to do about it: it leaves the queue, and the decision is kept."""
    item = _open(db, workspace_id, message_id)
    _decide(
        db,
        workspace_id=workspace_id,
        item=item,
        decision="dismissed",
        actor=actor,
        now=now,
        person_id=item.person_id,
    )


def attach(
    db: Connection,
    *,
    workspace_id: int,
    message_id: int,
    email: str,
    actor: str,
    now: datetime,
) -> int:
    """Link the message to the person with `email` (it shows in their history); the id
    of that person. Not an opt-out and not an unenroll: decide those on their own."""
    item = _open(db, workspace_id, message_id)
    person_id = people.id_by_email(db, workspace_id=workspace_id, email=email)
    _decide(
        db,
        workspace_id=workspace_id,
        item=item,
        decision="attached",
        actor=actor,
        now=now,
        person_id=person_id,
    )
    return person_id
