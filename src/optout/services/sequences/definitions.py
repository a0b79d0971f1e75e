"""Sequences: ordered steps, a ruleset, a status, and optionally an audience (R26, R11)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import SequenceSpec
from optout.errors import InvalidInput, about_field
from optout.mail.windows import ANY_TIME, Schedule
from optout.normalize import normalize_email
from optout.services.naming import clean_name, ensure_unique, row_by_id, row_by_name
from optout.services.sequences import rulesets


@dataclass(frozen=True)
class Step:
    kind: str  # email | wait
    wait_seconds: int = 0
    subject: str = ""
    body_text: str = ""
    body_html: str = ""


class InvalidStep(InvalidInput):
    """One step is wrong; `index` (from 0) says which, `reason` why."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"step {index + 1}: {reason}")
        self.index = index
        self.reason = reason


_STEP_KEYS = {"kind", "subject", "text", "html", "days", "hours", "minutes"}


def steps_from_data(items: Sequence[Mapping[str, Any]]) -> list[Step]:
    """Steps from plain data (a TOML or JSON file): `{"kind": "wait", "days": 2}` or
    `{"kind": "email", "subject": ..., "text": ..., "html": ...}`."""
    steps = []
    for i, item in enumerate(items):
        unknown = set(item) - _STEP_KEYS
        if unknown:
            raise InvalidStep(i, f"unknown keys {', '.join(sorted(unknown))}")
        kind = item.get("kind")
        if kind == "wait":
            try:
                seconds = int(
                    float(item.get("days", 0)) * 86400
                    + float(item.get("hours", 0)) * 3600
                    + float(item.get("minutes", 0)) * 60
                )
            except (TypeError, ValueError):
                raise InvalidStep(i, "days, hours and minutes take numbers") from None
            steps.append(Step(kind="wait", wait_seconds=seconds))
        elif kind == "email":
            texts = {key: item.get(key, "") for key in ("subject", "text", "html")}
            if not all(isinstance(value, str) for value in texts.values()):
                raise InvalidStep(i, "subject, text and html take text")
            steps.append(
                Step(
                    kind="email",
                    subject=texts["subject"],
                    body_text=texts["text"],
                    body_html=texts["html"],
                )
            )
        else:
            raise InvalidStep(i, f"kind must be 'email' or 'wait', not {kind!r}")
    return steps


def check_steps(steps: Sequence[Step]) -> None:
    """Raise InvalidStep for the first step that cannot be sent as it is. A follow-up
    email may leave its subject empty: it is sent as a reply to the first (R39)."""
    # The template engine is loaded by the saves that check steps, not by every reader.
    from optout.mail.templates import validate_templates

    first_email = next((i for i, step in enumerate(steps) if step.kind == "email"), None)
    for i, step in enumerate(steps):
        if step.kind not in ("email", "wait"):
            raise InvalidStep(i, "kind must be 'email' or 'wait'")
        if step.kind == "wait" and step.wait_seconds <= 0:
            raise InvalidStep(i, "a wait needs a positive duration")
        if i == first_email and not (step.subject.strip() and step.body_text.strip()):
            raise InvalidStep(i, "an email needs a subject and a text body")
        if step.kind == "email" and not step.body_text.strip():
            raise InvalidStep(i, "an email needs a text body")
        if step.kind == "email":
            try:
                validate_templates(step.subject, step.body_text, step.body_html)
            except InvalidInput as exc:
                raise InvalidStep(i, exc.message) from exc


def check_sender(from_address: str, reply_to: str) -> None:
    """Bad input before the first write: an address every send can put in its headers."""
    with about_field("from_address", "From address"):
        if not from_address.strip():
            raise InvalidInput(
                "a sequence needs an address to send from: type one, such as "
                "sam@example.com or Sam Seller <sam@example.com>"
            )
        _one_line(from_address, what="From")
        normalize_email(_address_part(from_address))
    if reply_to.strip():
        with about_field("reply_to", "Reply-To address"):
            _one_line(reply_to, what="Reply-To")
            normalize_email(_address_part(reply_to))


def _address_part(sender: str) -> str:
    """The address of `Name <address>` or of a bare address; what was typed when it holds
    none that can be read, so the refusal quotes that (not an empty string)."""
    return parseaddr(sender)[1] or sender.strip()


def _one_line(address: str, *, what: str) -> None:
    """A line break (or another control character) in a sender would be written into the
    headers of every email, where it cannot go: refused when saved, not at each send."""
    if any(unicodedata.category(ch) == "Cc" for ch in address):
        raise InvalidInput(
            f"the {what} address must be one line of text: it holds a line break or "
            f"another control character ({address!r})"
        )


def create(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    ruleset: str,
    now: datetime,
    from_address: str,
    steps: Sequence[Step] = (),
    audience: str | None = None,
    reply_to: str = "",
    schedule: Schedule = ANY_TIME,
) -> int:
    """A new sequence; without a schedule it sends at any hour (R38)."""
    name = clean_name(name, what="sequence")
    ensure_unique(db, t.sequences, workspace_id=workspace_id, name=name, what="sequence")
    check_sender(from_address, reply_to)
    ruleset_id = row_by_name(
        db, t.rulesets, workspace_id=workspace_id, name=ruleset, what="ruleset"
    )["id"]
    audience_id = None
    if audience is not None:
        audience_id = row_by_name(
            db, t.audiences, workspace_id=workspace_id, name=audience, what="audience"
        )["id"]
    check_steps(steps)
    sequence_id = db.execute(
        t.sequences.insert()
        .values(
            workspace_id=workspace_id,
            name=name,
            ruleset_id=ruleset_id,
            audience_id=audience_id,
            status="active",
            from_address=from_address,
            reply_to=reply_to,
            created_at=now,
            **schedule_values(schedule),
        )
        .returning(t.sequences.c.id)
    ).scalar_one()
    # The From address is the sequence's first mailbox (made when the workspace has none).
    from optout.services.mailboxes import sender_mailboxes  # reading a sequence needs none

    sender_mailboxes.attach(
        db,
        sequence_id=sequence_id,
        mailbox_ids=[
            sender_mailboxes.for_sender(
                db, workspace_id=workspace_id, from_address=from_address, now=now
            )
        ],
    )
    if steps:
        db.execute(
            t.sequence_steps.insert(),
            [
                {
                    "sequence_id": sequence_id,
                    "position": i,
                    "kind": step.kind,
                    "wait_seconds": step.wait_seconds,
                    "subject": step.subject,
                    "body_text": step.body_text,
                    "body_html": step.body_html,
                }
                for i, step in enumerate(steps)
            ],
        )
    return int(sequence_id)


def schedule_values(schedule: Any) -> dict[str, Any]:
    """The sequence columns of a schedule; InvalidInput for anything else."""
    if not isinstance(schedule, Schedule):
        raise InvalidInput("a sequence's schedule must give days and hours to send in")
    return {
        "send_days": schedule.days,
        "send_from_minute": schedule.start_minute,
        "send_until_minute": schedule.end_minute,
        "business_day_waits": schedule.business_day_waits,
    }


def spec(db: Connection, *, workspace_id: int, sequence_id: int) -> SequenceSpec:
    row = row_by_id(db, t.sequences, workspace_id=workspace_id, id=sequence_id, what="sequence")
    return SequenceSpec(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        ruleset=rulesets.spec(db, workspace_id=workspace_id, ruleset_id=row["ruleset_id"]),
    )


def spec_by_name(db: Connection, *, workspace_id: int, name: str) -> SequenceSpec:
    row = row_by_name(db, t.sequences, workspace_id=workspace_id, name=name, what="sequence")
    return spec(db, workspace_id=workspace_id, sequence_id=row["id"])


STATUSES = ("active", "paused", "archived")


def set_status(
    db: Connection, *, workspace_id: int, name: str, status: str, actor: str, now: datetime
) -> SequenceSpec:
    """Pause, resume or archive: sends stop or restart; nobody is unenrolled (R11)."""
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    current = spec_by_name(db, workspace_id=workspace_id, name=name)
    if current.status == status:
        return current
    if current.status == "archived" and status == "active":
        raise InvalidInput(f"{name!r} is archived; archived sequences cannot be resumed")
    s = t.sequences
    db.execute(s.update().where(s.c.id == current.id).values(status=status))
    from optout.services import events

    events.record(
        db,
        workspace_id=workspace_id,
        kind=f"sequence_{status}",
        actor=actor,
        now=now,
        sequence_id=current.id,
        detail={"from": current.status, "to": status},
    )
    return spec(db, workspace_id=workspace_id, sequence_id=current.id)


@dataclass(frozen=True)
class Overview:
    id: int
    name: str
    status: str
    ruleset: str
    audience: str | None
    from_address: str
    steps: list[Step]
    queued_emails: int
    mailboxes: list[str] = field(default_factory=list)  # the addresses it sends from
    # Why some of its emails wait: each of its mailboxes that is paused, with the reason.
    paused_mailboxes: list[str] = field(default_factory=list)


def overview(db: Connection, *, workspace_id: int, name: str) -> Overview:
    row = row_by_name(db, t.sequences, workspace_id=workspace_id, name=name, what="sequence")
    ruleset = row_by_id(
        db, t.rulesets, workspace_id=workspace_id, id=row["ruleset_id"], what="ruleset"
    )
    audience = None
    if row["audience_id"] is not None:
        audience = row_by_id(
            db, t.audiences, workspace_id=workspace_id, id=row["audience_id"], what="audience"
        )["name"]
    st, e, o = t.sequence_steps, t.enrollments, t.outbound_emails
    steps = [
        Step(r.kind, r.wait_seconds, r.subject, r.body_text, r.body_html)
        for r in db.execute(
            sa.select(st).where(st.c.sequence_id == row["id"]).order_by(st.c.position)
        )
    ]
    queued = db.scalar(
        sa.select(sa.func.count())
        .select_from(o.join(e, e.c.id == o.c.enrollment_id))
        .where(e.c.sequence_id == row["id"], o.c.status == "queued")
    )
    b, sm = t.mailboxes, t.sequence_mailboxes
    senders = db.execute(
        sa.select(b.c.address, b.c.status, b.c.pause_reason)
        .join(sm, sm.c.mailbox_id == b.c.id)
        .where(sm.c.sequence_id == row["id"])
        .order_by(b.c.address)
    ).all()
    return Overview(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        ruleset=ruleset["name"],
        audience=audience,
        from_address=row["from_address"],
        steps=steps,
        queued_emails=int(queued or 0),
        mailboxes=[address for address, _, _ in senders],
        paused_mailboxes=[
            f"{address} is paused ({reason}): its emails wait until an admin resumes it."
            for address, status, reason in senders
            if status == "paused"
        ],
    )


def audience_id(db: Connection, *, workspace_id: int, sequence_id: int) -> int | None:
    row = row_by_id(db, t.sequences, workspace_id=workspace_id, id=sequence_id, what="sequence")
    found = row["audience_id"]
    return int(found) if found is not None else None
