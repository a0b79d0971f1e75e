"""Changing a sequence after it was created: its settings (name, ruleset, audience, sender)
and its steps (edit, add, reorder, delete).

Emails are rendered from their step when they are sent, so an edited text applies to
every email not sent yet. A step that already has emails (queued, being sent or sent)
keeps its row, so the record of what was sent and every queued email stay intact: it
can be edited and moved but not deleted, and an email step stays an email step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput
from optout.mail.windows import ANY_TIME, Schedule
from optout.services import events
from optout.services.mailboxes import sender_mailboxes
from optout.services.naming import clean_name, ensure_unique, row_by_id, row_by_name
from optout.services.send_queue import realign
from optout.services.send_queue.schedule import schedule_of
from optout.services.sequences import auto_enroll
from optout.services.sequences.definitions import (
    InvalidStep,
    Step,
    check_sender,
    check_steps,
    schedule_values,
)


@dataclass(frozen=True)
class StoredStep:
    id: int
    step: Step
    emails: int  # queued, being sent or sent from this step


@dataclass(frozen=True)
class Editable:
    """A sequence as its edit form shows it."""

    id: int
    name: str
    status: str
    ruleset: str
    audience: str | None
    from_address: str
    reply_to: str
    steps: list[StoredStep]
    schedule: Schedule = ANY_TIME


def editable(db: Connection, *, workspace_id: int, sequence_id: int) -> Editable:
    row = row_by_id(db, t.sequences, workspace_id=workspace_id, id=sequence_id, what="sequence")
    ruleset = row_by_id(
        db, t.rulesets, workspace_id=workspace_id, id=row["ruleset_id"], what="ruleset"
    )["name"]
    audience = None
    if row["audience_id"] is not None:
        audience = row_by_id(
            db, t.audiences, workspace_id=workspace_id, id=row["audience_id"], what="audience"
        )["name"]
    st, o = t.sequence_steps, t.outbound_emails
    emails = (
        sa.select(sa.func.count())
        .where(o.c.step_id == st.c.id, o.c.status != "cancelled")
        .scalar_subquery()
    )
    steps = [
        StoredStep(
            r.id, Step(r.kind, r.wait_seconds, r.subject, r.body_text, r.body_html), int(r.emails)
        )
        for r in db.execute(
            sa.select(st, emails.label("emails"))
            .where(st.c.sequence_id == sequence_id)
            .order_by(st.c.position)
        )
    ]
    return Editable(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        ruleset=ruleset,
        audience=audience,
        from_address=row["from_address"],
        reply_to=row["reply_to"],
        steps=steps,
        schedule=schedule_of(db, sequence_id=sequence_id),
    )


SETTINGS = ("name", "ruleset", "audience", "from_address", "reply_to", "schedule")


def update_settings(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    changes: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> Editable:
    """Change the given settings, the others stay. `ruleset` and `audience` are names;
    `audience: None` leaves automatic enrollment off; `schedule` is a Schedule, and a new
    one moves the queued emails it closes to its next opening (R38). Nobody is enrolled
    or unenrolled here: every send is checked under the settings as they are then (R28)."""
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of a sequence")
    before = editable(db, workspace_id=workspace_id, sequence_id=sequence_id)
    after = {key: getattr(before, key) for key in SETTINGS} | dict(changes)
    after["name"] = clean_name(str(after["name"]), what="sequence")
    if after["name"] != before.name:
        ensure_unique(
            db, t.sequences, workspace_id=workspace_id, name=after["name"], what="sequence"
        )
    after["from_address"] = str(after["from_address"]).strip()
    after["reply_to"] = str(after["reply_to"] or "").strip()
    check_sender(after["from_address"], after["reply_to"])
    values: dict[str, Any] = {
        "name": after["name"],
        "from_address": after["from_address"],
        "reply_to": after["reply_to"],
        **schedule_values(after["schedule"]),
        "ruleset_id": row_by_name(
            db, t.rulesets, workspace_id=workspace_id, name=after["ruleset"], what="ruleset"
        )["id"],
        "audience_id": (
            row_by_name(
                db, t.audiences, workspace_id=workspace_id, name=after["audience"], what="audience"
            )["id"]
            if after["audience"]
            else None
        ),
    }
    after["audience"] = after["audience"] or None
    changed = {
        key: [_shown(getattr(before, key)), _shown(after[key])]
        for key in SETTINGS
        if getattr(before, key) != after[key]
    }
    if not changed:
        return before
    s = t.sequences
    audience_before = db.scalar(sa.select(s.c.audience_id).where(s.c.id == sequence_id))
    db.execute(s.update().where(s.c.id == sequence_id).values(**values))
    if "audience" in changed or "ruleset" in changed:
        auto_enroll.settings_changed(
            db,
            workspace_id=workspace_id,
            sequence_id=sequence_id,
            audience_before=audience_before,
            now=now,
        )
    if "schedule" in changed:
        realign.after_edit(db, sequence_id=sequence_id)
    if "from_address" in changed:  # new enrollments send from it; started ones keep theirs
        sender_mailboxes.attach(
            db,
            sequence_id=sequence_id,
            mailbox_ids=[
                sender_mailboxes.for_sender(
                    db, workspace_id=workspace_id, from_address=after["from_address"], now=now
                )
            ],
        )
    events.record(
        db,
        workspace_id=workspace_id,
        kind="sequence_updated",
        actor=actor,
        now=now,
        sequence_id=sequence_id,
        detail={"name": after["name"], "changes": changed},
    )
    return editable(db, workspace_id=workspace_id, sequence_id=sequence_id)


def _shown(value: Any) -> Any:
    return value.describe() if isinstance(value, Schedule) else value


@dataclass(frozen=True)
class EditedStep:
    """One step of the new list: `step_id` is the stored step it edits (None: a new one)."""

    step: Step
    step_id: int | None = None


def replace_steps(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    steps: Sequence[EditedStep],
    actor: str,
    now: datetime,
) -> Editable:
    """Make the sequence's steps exactly `steps`, in this order, in one transaction.

    Stored steps left out are deleted, which a step with emails refuses (Conflict);
    InvalidStep names the first step that cannot be sent as it is."""
    if not steps:
        raise InvalidInput("a sequence needs at least one step")
    check_steps([edited.step for edited in steps])
    before = editable(db, workspace_id=workspace_id, sequence_id=sequence_id)
    stored = {s.id: s for s in before.steps}
    kept: set[int] = set()
    for i, edited in enumerate(steps):
        if edited.step_id is None:
            continue
        if edited.step_id not in stored:
            raise InvalidStep(i, "this step is not part of the sequence (reload the page)")
        if edited.step_id in kept:
            raise InvalidStep(i, "this step appears twice")
        kept.add(edited.step_id)
        was = stored[edited.step_id]
        if was.emails and was.step.kind != edited.step.kind:
            raise InvalidStep(
                i, f"this {was.step.kind} step has emails queued or sent; it keeps its kind"
            )
    gone = [s for s in before.steps if s.id not in kept]
    used = [s for s in gone if s.emails]
    if used:
        position = before.steps.index(used[0]) + 1
        raise Conflict(
            f"step {position} of the saved sequence has {used[0].emails} email(s) queued or "
            "sent and cannot be deleted"
        )
    st = t.sequence_steps
    if gone:
        db.execute(st.delete().where(st.c.id.in_([s.id for s in gone])))
    # Positions are unique per sequence: park the kept steps out of the way first.
    db.execute(
        st.update()
        .where(st.c.sequence_id == sequence_id)
        .values(position=-1 - st.c.position)  # never collides with 0, 1, 2...
    )
    for position, edited in enumerate(steps):
        values = {
            "position": position,
            "kind": edited.step.kind,
            "wait_seconds": edited.step.wait_seconds if edited.step.kind == "wait" else 0,
            "subject": edited.step.subject if edited.step.kind == "email" else "",
            "body_text": edited.step.body_text if edited.step.kind == "email" else "",
            "body_html": edited.step.body_html if edited.step.kind == "email" else "",
        }
        if edited.step_id is None:
            db.execute(st.insert().values(sequence_id=sequence_id, **values))
        else:
            db.execute(st.update().where(st.c.id == edited.step_id).values(**values))
    _point_at_queued_steps(db, sequence_id=sequence_id)
    events.record(
        db,
        workspace_id=workspace_id,
        kind="sequence_steps_updated",
        actor=actor,
        now=now,
        sequence_id=sequence_id,
        detail={
            "name": before.name,
            "steps_before": len(before.steps),
            "steps_after": len(steps),
            "deleted": len(gone),
            "added": sum(1 for edited in steps if edited.step_id is None),
        },
    )
    return editable(db, workspace_id=workspace_id, sequence_id=sequence_id)


def _point_at_queued_steps(db: Connection, *, sequence_id: int) -> None:
    """An active enrollment's next position is the (new) position of its queued email's
    step, so what it shows stays true after a reorder; sending follows the step itself."""
    e, o, st = t.enrollments, t.outbound_emails, t.sequence_steps
    queued_position = (
        sa.select(sa.func.max(st.c.position))
        .select_from(o.join(st, st.c.id == o.c.step_id))
        .where(o.c.enrollment_id == e.c.id, o.c.status.in_(("queued", "sending")))
        .scalar_subquery()
    )
    db.execute(
        e.update()
        .where(
            e.c.sequence_id == sequence_id,
            e.c.status.in_(t.ACTIVE_STATUSES),
            queued_position.is_not(None),
        )
        .values(next_position=queued_position)
    )
