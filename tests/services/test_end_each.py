"""One pass ends many enrollments, each for its own reason: a batch of inbound mail ends
the enrollments of an opt-out, a bounce and a complaint together, and each enrollment,
each cancelled email and each event says what ended it (R1, R35)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services.enforcement import end_each
from tests.factories import World, email_status, queued_email


def _rows(*rows: tuple[int, str, str, str, int]) -> sa.Select[Any]:
    """The targets as a select of literal rows: (enrollment, status, reason, rule, rank)."""
    selects = [
        sa.select(
            sa.literal(enrollment, sa.Integer).label("enrollment_id"),
            sa.literal(status).label("status"),
            sa.literal(reason).label("reason"),
            sa.literal(rule).label("rule"),
            sa.literal("inbound").label("actor"),
            sa.literal(rank, sa.Integer).label("rank"),
        )
        for enrollment, status, reason, rule, rank in rows
    ]
    union = sa.union_all(*selects).subquery()
    return sa.select(*union.c)


def _enrollment(db: Connection, sequence_id: int, person_id: int) -> int:
    e = t.enrollments
    return int(
        db.scalar(
            sa.select(e.c.id).where(e.c.sequence_id == sequence_id, e.c.person_id == person_id)
        )
    )


def test_R1_one_pass_ends_each_enrollment_for_its_own_reason(db: Connection, now: datetime) -> None:
    world = World(db, now)
    sequence = world.sequence()
    ann, ben, cy = (world.person(f"{n}@initech.com") for n in ("ann", "ben", "cy"))
    world.enroll(sequence, [ann, ben, cy])
    emails = {p: queued_email(world, sequence, p) for p in (ann, ben, cy)}
    ids = {p: _enrollment(db, sequence, p) for p in (ann, ben, cy)}

    removal = end_each(
        db,
        workspace_id=world.ws,
        targets=_rows(
            (ids[ann], "opted_out", "opted out via a reply", "opt_out", 2),
            (ids[ben], "bounced", "hard bounce via a bounce report", "bounce", 3),
            # Ann asked twice: the row of lowest rank says why her enrollment ended.
            (ids[ann], "replied", "replied by email", "reply", 1),
        ),
        now=now,
    )

    assert (removal.enrollments_ended, removal.emails_cancelled) == (2, 2)
    e, o, ev = t.enrollments, t.outbound_emails, t.events
    ended = {
        row.person_id: (row.status, row.end_reason)
        for row in db.execute(sa.select(e.c.person_id, e.c.status, e.c.end_reason))
    }
    assert ended == {
        ann: ("replied", "replied by email"),
        ben: ("bounced", "hard bounce via a bounce report"),
        cy: ("not_started", None),
    }
    assert email_status(world, emails[cy]) == "queued"
    reasons = dict(
        db.execute(sa.select(o.c.id, o.c.cancel_reason).where(o.c.status == "cancelled")).all()
    )
    assert reasons == {
        emails[ann]: "replied by email",
        emails[ben]: "hard bounce via a bounce report",
    }
    said = {
        (row.kind, row.person_id): (row.rule, row.actor, row.detail)
        for row in db.execute(
            sa.select(ev.c.kind, ev.c.person_id, ev.c.rule, ev.c.actor, ev.c.detail).where(
                ev.c.kind.in_(("enrollment_ended", "email_cancelled"))
            )
        )
    }
    for kind in ("enrollment_ended", "email_cancelled"):
        assert said[(kind, ann)] == (
            "reply",
            "inbound",
            {"status": "replied", "reason": "replied by email"},
        )
        assert said[(kind, ben)] == (
            "bounce",
            "inbound",
            {"status": "bounced", "reason": "hard bounce via a bounce report"},
        )
    assert (("enrollment_ended", cy)) not in said

    # Running the same pass again ends nothing more.
    again = end_each(
        db,
        workspace_id=world.ws,
        targets=_rows((ids[ann], "opted_out", "opted out via a reply", "opt_out", 1)),
        now=now,
    )
    assert (again.enrollments_ended, again.emails_cancelled) == (0, 0)


def test_R1_a_status_that_is_not_final_is_refused(db: Connection, now: datetime) -> None:
    world = World(db, now)
    sequence = world.sequence()
    ann = world.person("ann@initech.com")
    world.enroll(sequence, [ann])
    with pytest.raises(ValueError, match="not a final enrollment status"):
        end_each(
            db,
            workspace_id=world.ws,
            targets=_rows((_enrollment(db, sequence, ann), "active", "why not", "reply", 1)),
            now=now,
        )
