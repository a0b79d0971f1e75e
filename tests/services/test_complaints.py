"""Spam complaints suppress the address like an opt-out, rank first in explain, write back
to the CRM, are sticky, and are cleared only by an audited act (R16, R29, R31, R33, R36)."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.eligibility import Purpose, Status
from optout.errors import InvalidInput, NotFound
from optout.sending.claim import claim
from optout.services import events
from optout.services.enrollments import refresh
from optout.services.imports import people_files
from optout.services.reads import listing
from optout.services.sequences import definitions
from optout.services.suppression import optouts, writebacks
from tests.factories import World, email_status, queued_email

STEPS = (definitions.Step(kind="email", subject="Hi", body_text="Hello"),)
FBL = "fbl.mail.example"


def _complain(world: World, email: str, **kw: str) -> optouts.Suppressed:
    return optouts.complain(
        world.db,
        workspace_id=world.ws,
        email=email,
        actor="feedback-loop",
        now=world.now,
        reporting_domain=kw.pop("reporting_domain", FBL),
        **kw,
    )


def _complained(world: World, email: str) -> bool:
    s = t.suppressions
    found = world.db.scalar(
        sa.select(s.c.id).where(
            s.c.workspace_id == world.ws, s.c.email == email, s.c.kind == "complaint"
        )
    )
    return found is not None


def test_R36_complaint_blocks_enrollment_and_send(world: World) -> None:
    ann = world.person("ann@acme.com", company="acme.com")
    world.ruleset("No exclusions", exclusions_enabled=False)
    seq = world.sequence(ruleset="No exclusions", steps=STEPS)

    _complain(world, "Ann@Acme.com")
    twin = world.person("ANN@acme.com")  # a record made later holds it too (R1)

    assert world.enroll(seq, [ann, twin]).enrolled == 0
    for purpose in Purpose:
        decision = world.explain("ann@acme.com", purpose=purpose).decision
        assert not decision.allowed
        assert decision.primary_reason is not None
        assert decision.primary_reason.check == "complained"


def test_R36_R28_the_send_time_check_ends_an_enrollment_whose_address_complained(
    world: World,
) -> None:
    """A complaint row that reached the table without the service (no enrollment ended):
    the claim's own check still stops the email."""
    ann = world.person("ann@acme.com")
    seq = world.sequence(steps=STEPS)
    world.enroll(seq, [ann])
    queued = queued_email(world, seq, ann)
    world.db.execute(
        t.suppressions.insert().values(
            workspace_id=world.ws,
            email="ann@acme.com",
            kind="complaint",
            since=world.now,
            actor="feedback-loop",
            channel="complaint",
            reason=f"abuse report from {FBL}",
        )
    )

    result = claim(world.db, now=world.now, workspace_id=world.ws)

    assert result.claims == []
    assert email_status(world, queued) == "cancelled"
    assert world.status_of(seq, ann) == "opted_out"
    e = t.enrollments
    reason = world.db.scalar(sa.select(e.c.end_reason).where(e.c.person_id == ann))
    assert reason is not None
    assert reason.startswith("spam complaint")


def test_R36_complaint_ends_enrollments_and_cancels_queued_email_in_the_same_transaction(
    world: World,
) -> None:
    ann = world.person("ann@acme.com")
    bob = world.person("bob@acme.com")
    first = world.sequence("First", steps=STEPS)
    second = world.sequence("Second", steps=STEPS)
    world.enroll(first, [ann, bob])
    world.enroll(second, [ann])
    queued = queued_email(world, first, ann)
    colleague = queued_email(world, first, bob)

    done = _complain(world, "ann@acme.com", feedback_type="Abuse")

    assert (done.email, done.new, done.enrollments_ended, done.emails_cancelled) == (
        "ann@acme.com",
        True,
        2,
        2,
    )
    assert world.status_of(first, ann) == "opted_out"
    assert world.status_of(second, ann) == "opted_out"
    assert email_status(world, queued) == "cancelled"
    assert email_status(world, colleague) == "queued"
    e = t.enrollments
    reasons = set(world.db.scalars(sa.select(e.c.end_reason).where(e.c.person_id == ann)))
    assert reasons == {f"spam complaint (abuse report from {FBL})"}
    history = events.history(world.db, workspace_id=world.ws, person_id=ann)
    kinds = [x.kind for x in history]
    assert (
        kinds.index("complained") < kinds.index("email_cancelled") < kinds.index("enrollment_ended")
    )
    complained = next(x for x in history if x.kind == "complained")
    assert complained.rule == "complaint"
    assert complained.detail["channel"] == "complaint"


def test_R29_R36_explain_lists_the_complaint_first_with_its_evidence(world: World) -> None:
    world.person("ann@acme.com")
    world.sequence(steps=STEPS)
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="ann@acme.com",
        actor="ann",
        channel="unsubscribe_link",
        now=world.now,
    )
    _complain(world, "ann@acme.com", feedback_type="abuse", reason="matched by feedback id")

    decision = world.explain("ann@acme.com").decision

    assert [o.check for o in decision.reasons] == ["complained", "opted_out"]
    first = decision.outcomes[0]
    assert first.status is Status.BLOCK
    assert first.summary == (
        f"ann@acme.com sent a spam complaint on {world.now:%Y-%m-%d} (abuse report from {FBL})"
    )
    assert first.evidence["since"] == str(world.now)
    assert first.evidence["feedback_type"] == "abuse"
    assert first.evidence["reporting_domain"] == FBL
    assert first.evidence["reason"] == f"abuse report from {FBL}: matched by feedback id"


def test_R31_R36_a_complaint_queues_the_crm_opt_out_write_back_in_its_transaction(
    world: World,
) -> None:
    world.person("ann@acme.com")
    _complain(world, "ann@acme.com")
    _complain(world, "ann@acme.com")  # a second report: one pending write-back still
    pending = writebacks.pending_writebacks(world.db, workspace_id=world.ws)
    assert [(w.email, w.field, w.value) for w in pending] == [
        ("ann@acme.com", writebacks.OPT_OUT_FIELD, "true")
    ]
    # An opt-out the CRM itself told us of is not written back to it.
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="bob@acme.com",
        actor="crm-sync",
        channel="crm",
        now=world.now,
    )
    emails = [w.email for w in writebacks.pending_writebacks(world.db, workspace_id=world.ws)]
    assert emails == ["ann@acme.com"]


def test_R33_R36_no_import_clears_a_complaint(world: World) -> None:
    world.person("ann@acme.com")
    _complain(world, "ann@acme.com")
    text = "Email,Opt out,Status\nann@acme.com,false,Lead\n"
    source = io.StringIO(text, newline="")
    source.name = "people.csv"  # type: ignore[misc]

    report = people_files.import_people(
        world.db,
        workspace_id=world.ws,
        source=source,
        mapping=people_files.parse_mapping(
            ["Email=email", "Opt out=email_opt_out", "Status=status"]
        ),
        actor="ops@acme-sales.com",
        now=world.now,
    )

    assert (report.applied, report.updated) == (True, 1)
    assert _complained(world, "ann@acme.com")
    seq = world.sequence(steps=STEPS)
    person_id = world.db.scalar(sa.select(t.people.c.id).where(t.people.c.email == "ann@acme.com"))
    assert world.enroll(seq, [person_id]).enrolled == 0


def test_R33_R36_clearing_a_complaint_is_explicit_audited_and_leaves_an_opt_out(
    world: World,
) -> None:
    ann = world.person("ann@acme.com")
    seq = world.sequence(steps=STEPS)
    _complain(world, "ann@acme.com")
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="ann@acme.com",
        actor="ann",
        channel="manual",
        now=world.now,
    )
    clear = {"workspace_id": world.ws, "email": "ann@acme.com", "now": world.now}
    with pytest.raises(InvalidInput, match="clearing a spam complaint needs a reason"):
        optouts.clear_opt_out(world.db, actor="admin", reason=" ", kind="complaint", **clear)
    with pytest.raises(InvalidInput, match="only an opt-out or a spam complaint"):
        optouts.clear_opt_out(world.db, actor="admin", reason="x", kind="bounce", **clear)

    optouts.clear_opt_out(
        world.db,
        actor="admin@acme-sales.com",
        reason="reported by mistake, confirmed in writing",
        kind="complaint",
        **clear,
    )

    assert not _complained(world, "ann@acme.com")
    reason = world.explain("ann@acme.com").decision.primary_reason
    assert reason is not None
    assert reason.check == "opted_out"  # the opt-out stays
    ledger = optouts.ledger(world.db, workspace_id=world.ws, email="ann@acme.com")
    assert [(r["kind"], r["action"]) for r in ledger] == [
        ("complaint", "added"),
        ("opt_out", "added"),
        ("complaint", "cleared"),
    ]
    assert ledger[2]["actor"] == "admin@acme-sales.com"
    assert ledger[2]["reason"] == "reported by mistake, confirmed in writing"
    kinds = [x.kind for x in events.history(world.db, workspace_id=world.ws, person_id=ann)]
    assert kinds[-1] == "complaint_cleared"
    with pytest.raises(NotFound, match="no spam complaint"):
        optouts.clear_opt_out(world.db, actor="admin", reason="again", kind="complaint", **clear)

    optouts.clear_opt_out(world.db, actor="admin", reason="asked back in", **clear)
    assert world.enroll(seq, [ann]).enrolled == 1


def test_R36_the_report_is_kept_in_the_suppression_and_the_ledger(world: World) -> None:
    world.person("ann@acme.com")
    _complain(
        world,
        "ann@acme.com",
        feedback_type="fraud",
        reporting_domain="WWW.Mail.Example.",
        reason="matched by  feedback id",
        evidence="Feedback-Type: fraud",
    )
    listed = listing.suppressions(
        world.db, workspace_id=world.ws, limit=10, offset=0, kind="complaint"
    )
    assert [(r["email"], r["channel"], r["reason"]) for r in listed.rows] == [
        ("ann@acme.com", "complaint", "fraud report from mail.example: matched by feedback id")
    ]
    (entry,) = optouts.ledger(world.db, workspace_id=world.ws, email="ann@acme.com")
    assert (entry["kind"], entry["channel"], entry["evidence"]) == (
        "complaint",
        "complaint",
        "Feedback-Type: fraud",
    )
    assert entry["reason"] == listed.rows[0]["reason"]


def test_R36_R34_not_spam_and_malformed_reports_suppress_nothing(world: World) -> None:
    world.person("ann@acme.com")
    with pytest.raises(InvalidInput, match="not-spam"):
        _complain(world, "ann@acme.com", feedback_type="not-spam")
    with pytest.raises(InvalidInput, match="feedback type"):
        _complain(world, "ann@acme.com", feedback_type="ab use")
    with pytest.raises(InvalidInput, match="domain"):
        _complain(world, "ann@acme.com", reporting_domain="not a domain")
    assert not _complained(world, "ann@acme.com")


def test_R30_R36_the_not_enrolled_view_says_a_member_sent_a_spam_complaint(
    world: World,
) -> None:
    world.person("ann@acme.com", title="CTO")
    world.person("bob@acme.com", title="CTO")
    world.audience("CTOs", filter='person.title = "CTO"')
    world.sequence("Outbound", audience="CTOs", steps=STEPS)
    _complain(world, "bob@acme.com")

    done = refresh.refresh(
        world.db, workspace_id=world.ws, sequence="Outbound", actor="test", now=world.now
    )

    assert (done.enrolled, done.skipped) == (1, 1)
    (left_out,) = refresh.not_enrolled(world.db, workspace_id=world.ws, sequence="Outbound")
    assert (left_out.email, left_out.check, left_out.reason) == (
        "bob@acme.com",
        "complained",
        "sent a spam complaint",
    )
