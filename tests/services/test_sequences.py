"""Sequences, automatic enrollment, bulk unenroll and the claim-time check
(R10, R11, R14, R26, R28, R30)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.sending.claim import claim
from optout.services import events
from optout.services.directory import people
from optout.services.enrollments import enrolling, refresh
from optout.services.sequences import definitions
from optout.services.suppression import optouts
from tests.factories import World, email_status, queued_email

TWO_EMAILS = (
    definitions.Step(kind="wait", wait_seconds=3600),
    definitions.Step(kind="email", subject="Hi {{ person.first_name }}", body_text="One"),
    definitions.Step(kind="wait", wait_seconds=2 * 86400),
    definitions.Step(kind="email", subject="Again", body_text="Two"),
)


def test_R26_enrollment_queues_first_email_after_the_delay_step(world: World) -> None:
    ann = world.person("ann@acme.com")
    seq = world.sequence(steps=TWO_EMAILS)
    world.enroll(seq, [ann])
    o = t.outbound_emails
    due = world.db.scalar(sa.select(o.c.due_at).where(o.c.id == queued_email(world, seq, ann)))
    assert due == world.now + timedelta(hours=1)
    assert claim(world.db, now=world.now + timedelta(minutes=59)).claims == []
    (claimed,) = claim(world.db, now=world.now + timedelta(hours=1)).claims
    assert claimed.position == 1
    assert claimed.subject == "Hi {{ person.first_name }}"


def test_R11_pausing_stops_claims_and_unenrolls_nobody(world: World) -> None:
    ann = world.person("ann@acme.com")
    seq = world.sequence()
    world.enroll(seq, [ann])
    definitions.set_status(
        world.db, workspace_id=world.ws, name="Outbound", status="paused", actor="a", now=world.now
    )
    assert claim(world.db, now=world.now + timedelta(days=1)).claims == []
    assert world.status_of(seq, ann) == "not_started"
    email = queued_email(world, seq, ann)
    assert email_status(world, email) == "queued"
    definitions.set_status(
        world.db, workspace_id=world.ws, name="Outbound", status="active", actor="a", now=world.now
    )
    assert len(claim(world.db, now=world.now + timedelta(days=1)).claims) == 1


def test_R11_archived_sequence_cannot_be_resumed(world: World) -> None:
    world.sequence()
    definitions.set_status(
        world.db,
        workspace_id=world.ws,
        name="Outbound",
        status="archived",
        actor="a",
        now=world.now,
    )
    with pytest.raises(InvalidInput, match="archived"):
        definitions.set_status(
            world.db,
            workspace_id=world.ws,
            name="Outbound",
            status="active",
            actor="a",
            now=world.now,
        )


def test_R11_crm_status_change_or_not_qualified_does_not_unenroll(world: World) -> None:
    ann = world.person("ann@acme.com", status="Working")
    seq = world.sequence()
    world.enroll(seq, [ann])
    people.update(
        world.db,
        workspace_id=world.ws,
        person_id=ann,
        changes={"status": "Not qualified"},
        actor="crm",
        now=world.now,
    )
    assert world.status_of(seq, ann) == "not_started"


def test_R10_bulk_unenroll_by_status_is_one_set_based_operation_with_progress(
    world: World,
) -> None:
    staff = [world.person(f"p{i}@acme{i % 7}.com") for i in range(60)]
    seq, other = world.sequence("A"), world.sequence("B")
    world.enroll(seq, staff)
    world.enroll(other, staff[:10])
    e = t.enrollments
    world.db.execute(
        e.update()
        .where(e.c.sequence_id == seq, e.c.person_id.in_(staff[:20]))
        .values(status="in_progress")
    )
    calls: list[tuple[int, int]] = []
    removal = enrolling.bulk_unenroll(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        statuses=["in_progress"],
        actor="a",
        now=world.now,
        progress=lambda done, total: calls.append((done, total)),
        chunk=7,
    )
    assert removal.enrollments_ended == 20
    assert removal.emails_cancelled == 20
    assert calls[-1] == (20, 20)
    assert len(calls) > 1
    counts = enrolling.count_by_status(world.db, workspace_id=world.ws, sequence_id=seq)
    assert counts == {"unenrolled": 20, "not_started": 40}
    assert enrolling.count_by_status(world.db, workspace_id=world.ws, sequence_id=other) == {
        "not_started": 10
    }
    with pytest.raises(InvalidInput, match="active statuses"):
        enrolling.bulk_unenroll(
            world.db, workspace_id=world.ws, statuses=["finished"], actor="a", now=world.now
        )


def test_R14_change_committed_before_the_claim_wins(world: World) -> None:
    ann = world.person("ann@acme.com", company="acme.com")
    ben = world.person("ben@globex.io", company="globex.io")
    seq = world.sequence()
    world.enroll(seq, [ann, ben])
    world.exclusion(
        "Acme",
        "company",
        "company.domain = acme.com",
        exclude_from_sequences=True,
        unenroll_existing_on_save=False,
    )
    # The rule was saved without the sweep; the claim still re-checks and cancels.
    e = t.enrollments
    assert world.status_of(seq, ann) == "not_started"
    result = claim(world.db, now=world.now)
    assert [c.person["email"] for c in result.claims] == ["ben@globex.io"]
    assert result.cancelled == 1
    assert world.status_of(seq, ann) == "unenrolled"
    assert world.db.scalar(sa.select(e.c.end_reason).where(e.c.person_id == ann)) is not None


def test_R28_claim_cancels_email_of_an_opted_out_duplicate_address(world: World) -> None:
    ann = world.person("ann@acme.com")
    seq = world.sequence()
    world.enroll(seq, [ann])
    s = t.suppressions
    # An opt-out written by another process without the usual service path still wins.
    world.db.execute(
        s.insert().values(
            workspace_id=world.ws,
            email="ann@acme.com",
            kind="opt_out",
            since=world.now,
            actor="crm",
            channel="crm",
            reason="",
        )
    )
    email = queued_email(world, seq, ann)
    result = claim(world.db, now=world.now)
    assert (result.claims, result.cancelled) == ([], 1)
    assert email_status(world, email) == "cancelled"
    assert world.status_of(seq, ann) == "opted_out"
    kinds = [ev.kind for ev in events.history(world.db, workspace_id=world.ws, person_id=ann)]
    assert kinds[-2:] == ["email_cancelled", "enrollment_ended"]


def test_R30_refresh_enrolls_the_audience_and_keeps_who_was_left_out_and_why(
    world: World,
) -> None:
    world.person("ann@acme.com", company="acme.com", title="CTO")
    world.person("ben@globex.io", company="globex.io", title="CTO")
    world.person("cat@gmail.com", title="CTO")
    world.person("dan@initech.net", company="initech.net", title="CTO")
    world.person("eve@initech.net", company="initech.net", title="CTO")
    world.person("fay@hooli.com", company="hooli.com", title="Office manager")
    world.audience("CTOs", filter='person.title contains "cto"')
    world.ruleset("One per company", max_active_per_company=1)
    world.sequence("Tech", ruleset="One per company", audience="CTOs")
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    world.exclusion("Personal", "people", "person.email_domain is personal")
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="ben@globex.io",
        actor="a",
        channel="manual",
        now=world.now,
    )
    result = refresh.refresh(
        world.db, workspace_id=world.ws, sequence="Tech", actor="scheduler", now=world.now
    )
    assert (result.members, result.enrolled, result.skipped) == (5, 1, 4)
    rows = refresh.not_enrolled(world.db, workspace_id=world.ws, sequence="Tech")
    reasons = {row.email: row.reason for row in rows}
    assert reasons == {
        "ann@acme.com": "excluded by 'Customers'",
        "ben@globex.io": "opted out",
        "cat@gmail.com": "excluded by 'Personal'",
        "eve@initech.net": "company cap reached",
    }
    again = refresh.refresh(
        world.db, workspace_id=world.ws, sequence="Tech", actor="scheduler", now=world.now
    )
    assert again.enrolled == 0
    assert len(refresh.not_enrolled(world.db, workspace_id=world.ws, sequence="Tech")) == 4


def test_R30_a_member_two_exclusions_keep_out_is_listed_with_the_first_of_them(
    world: World,
) -> None:
    world.person("ann@acme.com", company="acme.com", title="CTO")
    world.audience("CTOs", filter='person.title contains "cto"')
    world.sequence("Tech", audience="CTOs")
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    world.exclusion("Acme people", "people", 'person.email_domain = "acme.com"')
    refresh.refresh(world.db, workspace_id=world.ws, sequence="Tech", actor="a", now=world.now)
    rows = refresh.not_enrolled(world.db, workspace_id=world.ws, sequence="Tech")
    assert [(row.email, row.exclusion) for row in rows] == [("ann@acme.com", "Customers")]
