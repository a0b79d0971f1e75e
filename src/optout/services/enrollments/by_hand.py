"""Enrolling people by hand, with a report: how many were enrolled, and for each one
who was not, why (the first check that stopped them, R17, R29).

Enrolling itself is `enrolling.enroll` (every eligibility check, set-based); the
reasons come from `eligibility.explain`, asked about the people left out afterwards,
so a company cap reached within the batch is the reason given too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.normalize import normalize_email
from optout.services import eligibility
from optout.services.directory import people
from optout.services.enrollments import enrolling
from optout.services.reads import listing
from optout.services.sequences import definitions

EXPLAINED = 100  # reasons are looked up for this many of the people left out
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class LeftOut:
    email: str
    reason: str


@dataclass(frozen=True)
class Report:
    requested: int  # people asked about (known to the workspace)
    enrolled: int
    left_out: list[LeftOut] = field(default_factory=list)  # with reasons, at most EXPLAINED
    left_out_total: int = 0  # every one not enrolled, unknown addresses included


def enroll_addresses(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    text: str,
    actor: str,
    now: datetime,
) -> Report:
    """Enroll the people with the addresses in `text` (one or many, separated by commas,
    semicolons, spaces or lines). An address that is malformed or that nobody in the
    workspace has is reported with that reason; the others are enrolled if eligible."""
    unusable: list[LeftOut] = []
    ids: list[int] = []
    seen: set[str] = set()
    for raw in _SEPARATORS.split(text):
        if not raw:
            continue
        try:
            address = normalize_email(raw.strip("<>\"'")).address
        except InvalidInput:
            unusable.append(LeftOut(raw, "not a valid email address"))
            continue
        if address in seen:
            continue
        seen.add(address)
        found = people.ids_by_email(db, workspace_id=workspace_id, email=address)
        if found:
            ids += found
        else:
            unusable.append(LeftOut(address, "nobody in this workspace has this address"))
    if not ids and not unusable:
        raise InvalidInput("give one or more email addresses")
    return _enroll(
        db,
        workspace_id=workspace_id,
        sequence_id=sequence_id,
        chosen=sa.select(t.people.c.id).where(t.people.c.id.in_(ids)),
        actor=actor,
        now=now,
        unusable=unusable,
    )


def enroll_filter(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    filter: str,
    actor: str,
    now: datetime,
) -> Report:
    """Enroll everyone a people-level filter matches who is eligible (InvalidFilter)."""
    if not filter.strip():
        raise InvalidInput("write a filter for the people to enroll")
    chosen = listing.matching_people(workspace_id=workspace_id, filter=filter, now=now)
    return _enroll(
        db,
        workspace_id=workspace_id,
        sequence_id=sequence_id,
        chosen=chosen,
        actor=actor,
        now=now,
        unusable=[],
    )


def _enroll(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    chosen: sa.Select[Any],
    actor: str,
    now: datetime,
    unusable: Sequence[LeftOut],
) -> Report:
    target = definitions.spec(db, workspace_id=workspace_id, sequence_id=sequence_id)
    e, p = t.enrollments, t.people
    last_before = db.scalar(sa.select(sa.func.max(e.c.id))) or 0
    done = enrolling.enroll(
        db,
        workspace_id=workspace_id,
        sequence_id=target.id,
        people=chosen,
        actor=actor,
        now=now,
    )
    asked = chosen.subquery()
    asked_id = asked.c[asked.c.keys()[0]]
    new = sa.select(e.c.person_id).where(
        e.c.sequence_id == target.id, e.c.id > last_before, e.c.source == "manual"
    )
    left = (
        sa.select(p.c.email)
        .join(asked, asked_id == p.c.id)
        .where(p.c.workspace_id == workspace_id, p.c.id.not_in(new))
        .distinct()
    )
    total = int(db.scalar(sa.select(sa.func.count()).select_from(left.subquery())) or 0)
    room = max(0, EXPLAINED - len(unusable))
    emails = list(db.scalars(left.order_by(p.c.email).limit(room))) if room else []
    reasons = [
        LeftOut(
            email,
            _reason(db, workspace_id=workspace_id, email=email, sequence=target.name, now=now),
        )
        for email in emails
    ]
    return Report(
        requested=done.requested,
        enrolled=done.enrolled,
        left_out=[*unusable[:EXPLAINED], *reasons],
        left_out_total=total + len(unusable),
    )


def _reason(db: Connection, *, workspace_id: int, email: str, sequence: str, now: datetime) -> str:
    explanation = eligibility.explain(
        db, workspace_id=workspace_id, email=email, sequence=sequence, now=now, via_audience=False
    )
    primary = explanation.decision.primary_reason
    return primary.summary if primary is not None else "eligible now: enroll again"
