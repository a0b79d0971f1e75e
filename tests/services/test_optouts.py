"""Opt-outs hold for the address, end enrollments at once, and are sticky (R1, R2, R33, R35)."""

from __future__ import annotations

import pytest

from optout.eligibility import Purpose, Status
from optout.errors import InvalidInput, NotFound
from optout.services import events
from optout.services.suppression import optouts
from tests.factories import World, email_status, queued_email


def test_R1_opt_out_ends_enrollments_and_cancels_queued_email_in_same_transaction(
    world: World,
) -> None:
    anna = world.person("anna@acme.com", company="acme.com")
    first, second = world.sequence("First"), world.sequence("Second")
    world.enroll(first, [anna])
    world.enroll(second, [anna])
    queued = queued_email(world, first, anna)

    result = optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="Anna@ACME.com",
        actor="sam@acme-sales.com",
        channel="manual",
        reason="asked on the phone",
        now=world.now,
    )

    assert (result.new, result.enrollments_ended, result.emails_cancelled) == (True, 2, 2)
    assert world.status_of(first, anna) == "opted_out"
    assert world.status_of(second, anna) == "opted_out"
    assert email_status(world, queued) == "cancelled"


def test_R1_opt_out_holds_for_the_address_including_later_duplicates(world: World) -> None:
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="lee@globex.io",
        actor="sam",
        channel="manual",
        now=world.now,
    )
    duplicate = world.person("LEE@globex.io", company="globex.io")  # imported later
    seq = world.sequence()
    assert world.enroll(seq, [duplicate]).enrolled == 0
    decision = world.explain("lee@globex.io").decision
    assert not decision.allowed
    assert decision.primary_reason is not None
    assert decision.primary_reason.check == "opted_out"
    send = world.explain("lee@globex.io", purpose=Purpose.SEND).decision
    assert not send.allowed


def test_R1_opted_out_person_cannot_be_enrolled_by_any_path_even_with_exclusions_off(
    world: World,
) -> None:
    pat = world.person("pat@initech.net")
    world.ruleset("No exclusions", exclusions_enabled=False)
    seq = world.sequence("Raw", ruleset="No exclusions")
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="pat@initech.net",
        actor="a",
        channel="api",
        now=world.now,
    )
    assert world.enroll(seq, [pat]).enrolled == 0
    outcomes = {
        o.check: o.status for o in world.explain("pat@initech.net", "Raw").decision.outcomes
    }
    assert outcomes["opted_out"] is Status.BLOCK
    assert outcomes["ruleset"] is Status.SKIP


def test_R2_any_member_opts_out_and_who_when_why_channel_are_recorded(world: World) -> None:
    person = world.person("kim@acme.com")
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="kim@acme.com",
        actor="junior.rep@acme-sales.com",
        channel="reply",
        reason="said stop",
        evidence="Please stop emailing me",
        now=world.now,
    )
    (entry,) = optouts.ledger(world.db, workspace_id=world.ws, email="kim@acme.com")
    assert entry["actor"] == "junior.rep@acme-sales.com"
    assert entry["channel"] == "reply"
    assert entry["reason"] == "said stop"
    assert entry["evidence"] == "Please stop emailing me"
    assert entry["at"] == world.now
    kinds = [e.kind for e in events.history(world.db, workspace_id=world.ws, person_id=person)]
    assert kinds == ["opted_out"]


def test_R2_opt_out_is_idempotent_and_says_so(world: World) -> None:
    world.person("kim@acme.com")
    args = {"workspace_id": world.ws, "email": "kim@acme.com", "actor": "a", "channel": "manual"}
    assert optouts.opt_out(world.db, now=world.now, **args).new
    assert not optouts.opt_out(world.db, now=world.now, **args).new
    actions = [
        e["action"] for e in optouts.ledger(world.db, workspace_id=world.ws, email="kim@acme.com")
    ]
    assert actions == ["added", "repeated"]


def test_R34_opt_out_refuses_bad_address_and_unknown_channel(world: World) -> None:
    with pytest.raises(InvalidInput, match="not an email address"):
        optouts.opt_out(
            world.db,
            workspace_id=world.ws,
            email="kim@",
            actor="a",
            channel="manual",
            now=world.now,
        )
    with pytest.raises(InvalidInput, match="unknown channel"):
        optouts.opt_out(
            world.db,
            workspace_id=world.ws,
            email="kim@acme.com",
            actor="a",
            channel="fax",
            now=world.now,
        )


def test_R33_clearing_an_opt_out_is_explicit_audited_and_needs_a_reason(world: World) -> None:
    person = world.person("kim@acme.com")
    seq = world.sequence()
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="kim@acme.com",
        actor="a",
        channel="crm",
        now=world.now,
    )
    with pytest.raises(InvalidInput, match="reason"):
        optouts.clear_opt_out(
            world.db,
            workspace_id=world.ws,
            email="kim@acme.com",
            actor="b",
            reason=" ",
            now=world.now,
        )
    optouts.clear_opt_out(
        world.db,
        workspace_id=world.ws,
        email="kim@acme.com",
        actor="admin@acme-sales.com",
        reason="re-subscribed in writing, ticket 4411",
        now=world.now,
    )
    assert world.enroll(seq, [person]).enrolled == 1
    ledger = optouts.ledger(world.db, workspace_id=world.ws, email="kim@acme.com")
    assert [e["action"] for e in ledger] == ["added", "cleared"]
    assert ledger[1]["reason"] == "re-subscribed in writing, ticket 4411"
    kinds = [e.kind for e in events.history(world.db, workspace_id=world.ws, person_id=person)]
    assert kinds[:2] == ["opted_out", "opt_out_cleared"]
    with pytest.raises(NotFound):
        optouts.clear_opt_out(
            world.db,
            workspace_id=world.ws,
            email="kim@acme.com",
            actor="b",
            reason="again",
            now=world.now,
        )


def test_R7_bounced_address_is_never_enrolled_and_bounce_ends_enrollments(world: World) -> None:
    ray = world.person("ray@acme.com")
    seq = world.sequence()
    world.enroll(seq, [ray])
    result = optouts.bounce(
        world.db,
        workspace_id=world.ws,
        email="ray@acme.com",
        actor="mailer",
        now=world.now,
        reason="550 5.1.1 user unknown",
    )
    assert result.enrollments_ended == 1
    assert world.status_of(seq, ray) == "bounced"
    reason = world.explain("ray@acme.com").decision.primary_reason
    assert reason is not None
    assert reason.check == "bounced"


def test_R35_opt_out_events_name_rule_enrollment_and_email(world: World) -> None:
    person = world.person("kim@acme.com")
    seq = world.sequence()
    world.enroll(seq, [person])
    email_id = queued_email(world, seq, person)
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="kim@acme.com",
        actor="a",
        channel="manual",
        now=world.now,
    )
    history = events.history(world.db, workspace_id=world.ws, person_id=person)
    assert [e.kind for e in history] == [
        "enrolled",
        "opted_out",
        "email_cancelled",
        "enrollment_ended",
    ]
    cancelled = history[2]
    assert (cancelled.rule, cancelled.email_id) == ("opt_out", email_id)
    ended = history[3]
    assert ended.enrollment_id is not None
    assert ended.sequence_id == seq
    assert ended.detail["status"] == "opted_out"


def test_R34_nul_characters_are_refused_before_the_database_sees_them(world: World) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        world.person("nul@acme.com", title="C\x00TO")
    with pytest.raises(InvalidInput, match="NUL"):
        world.person("nul@acme.com", fields={"tier": "a\x00"})
    with pytest.raises(InvalidInput, match="NUL"):
        world.persona("Bad", include=["ct\x00o"])
