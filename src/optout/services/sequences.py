"""Sequences: ordered steps, a ruleset, a status, and optionally an audience (R26, R11)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from datetime import datetime

from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import SequenceSpec
from optout.errors import InvalidInput
from optout.normalize import normalize_email
from optout.sending.templates import validate_templates
from optout.services import events, rulesets
from optout.services.naming import clean_name, ensure_unique, row_by_id, row_by_name


@dataclass(frozen=True)
class Step:
    kind: str  # email | wait
    wait_seconds: int = 0
    subject: str = ""
    body_text: str = ""
    body_html: str = ""


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
) -> int:
    name = clean_name(name, what="sequence")
    ensure_unique(db, t.sequences, workspace_id=workspace_id, name=name, what="sequence")
    if not from_address.strip():
        raise InvalidInput("a sequence needs a From address to send with")
    sender = parseaddr(from_address)
    normalize_email(sender[1])
    if reply_to.strip():
        normalize_email(parseaddr(reply_to)[1])
    ruleset_id = row_by_name(
        db, t.rulesets, workspace_id=workspace_id, name=ruleset, what="ruleset"
    )["id"]
    audience_id = None
    if audience is not None:
        audience_id = row_by_name(
            db, t.audiences, workspace_id=workspace_id, name=audience, what="audience"
        )["id"]
    for i, step in enumerate(steps):
        if step.kind not in ("email", "wait"):
            raise InvalidInput(f"step {i + 1}: kind must be 'email' or 'wait'")
        if step.kind == "wait" and step.wait_seconds <= 0:
            raise InvalidInput(f"step {i + 1}: a wait needs a positive duration")
        if step.kind == "email" and not (step.subject.strip() and step.body_text.strip()):
            raise InvalidInput(f"step {i + 1}: an email needs a subject and a text body")
        if step.kind == "email":
            try:
                validate_templates(step.subject, step.body_text, step.body_html)
            except InvalidInput as exc:
                raise InvalidInput(f"step {i + 1}: {exc.message}") from exc
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
        )
        .returning(t.sequences.c.id)
    ).scalar_one()
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


def audience_id(db: Connection, *, workspace_id: int, sequence_id: int) -> int | None:
    row = row_by_id(db, t.sequences, workspace_id=workspace_id, id=sequence_id, what="sequence")
    found = row["audience_id"]
    return int(found) if found is not None else None
