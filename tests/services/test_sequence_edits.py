"""Editing a sequence after it was created: settings, and steps edited, added, moved and
deleted without losing a queued or sent email (R26, R28)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound
from optout.sending.claim import claim
from optout.services.sequences import definitions
from optout.services.sequences.definitions import InvalidStep, Step
from optout.services.sequences.edits import EditedStep, editable, replace_steps, update_settings
from tests.factories import World, email_status, queued_email

FIRST = Step(kind="email", subject="Hi {{ person.first_name }}", body_text="One")
WAIT = Step(kind="wait", wait_seconds=86400)
SECOND = Step(kind="email", subject="Again", body_text="Two")


def _edit(world: World, sequence_id: int, steps: list[EditedStep]) -> None:
    replace_steps(
        world.db,
        workspace_id=world.ws,
        sequence_id=sequence_id,
        steps=steps,
        actor="ops@acme",
        now=world.now,
    )


def _kinds_and_subjects(world: World, sequence_id: int) -> list[tuple[str, str]]:
    found = editable(world.db, workspace_id=world.ws, sequence_id=sequence_id)
    return [(s.step.kind, s.step.subject) for s in found.steps]


def test_settings_change_ruleset_audience_sender_and_name(world: World) -> None:
    seq = world.sequence("Outbound")
    world.ruleset("Careful", reenroll_cooldown_days=30)
    world.audience("CTOs", filter='person.title contains "cto"')
    after = update_settings(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        changes={
            "name": "Outbound  Q4",
            "ruleset": "Careful",
            "audience": "CTOs",
            "from_address": "Ann <ann@acme-sales.com>",
            "reply_to": "replies@acme-sales.com",
        },
        actor="ops@acme",
        now=world.now,
    )
    assert (after.name, after.ruleset, after.audience) == ("Outbound Q4", "Careful", "CTOs")
    assert (after.from_address, after.reply_to) == (
        "Ann <ann@acme-sales.com>",
        "replies@acme-sales.com",
    )
    assert definitions.spec(world.db, workspace_id=world.ws, sequence_id=seq).ruleset.name == (
        "Careful"
    )
    ev = t.events
    (detail,) = world.db.scalars(
        sa.select(ev.c.detail).where(ev.c.sequence_id == seq, ev.c.kind == "sequence_updated")
    )
    assert detail["changes"]["ruleset"] == ["Default", "Careful"]
    assert detail["changes"]["audience"] == [None, "CTOs"]

    cleared = update_settings(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        changes={"audience": None},
        actor="ops@acme",
        now=world.now,
    )
    assert cleared.audience is None


def test_settings_refuse_a_taken_name_a_bad_sender_and_an_unknown_ruleset(world: World) -> None:
    seq = world.sequence("Outbound")
    world.sequence("Inbound")
    cases: list[tuple[dict[str, object], type[Exception]]] = [
        ({"name": "Inbound"}, Conflict),
        ({"from_address": "not an address"}, InvalidInput),
        ({"from_address": "  "}, InvalidInput),
        ({"ruleset": "Nope"}, NotFound),
        ({"status": "paused"}, InvalidInput),
    ]
    for changes, error in cases:
        with pytest.raises(error):
            update_settings(
                world.db,
                workspace_id=world.ws,
                sequence_id=seq,
                changes=changes,
                actor="ops@acme",
                now=world.now,
            )
    assert editable(world.db, workspace_id=world.ws, sequence_id=seq).name == "Outbound"


def test_R26_steps_reordered_added_and_deleted_keep_the_queued_email(world: World) -> None:
    ann = world.person("ann@acme.com", first_name="Ann")
    seq = world.sequence(steps=(FIRST, WAIT, SECOND))
    world.enroll(seq, [ann])
    email = queued_email(world, seq, ann)
    first, wait, second = editable(world.db, workspace_id=world.ws, sequence_id=seq).steps
    assert (first.emails, wait.emails, second.emails) == (1, 0, 0)

    # A delay first, the old first email edited, the last email deleted, a new one added.
    edited_first = Step(kind="email", subject="Hello {{ person.first_name }}", body_text="New")
    _edit(
        world,
        seq,
        [
            EditedStep(Step(kind="wait", wait_seconds=3600)),
            EditedStep(edited_first, first.id),
            EditedStep(WAIT, wait.id),
            EditedStep(Step(kind="email", subject="Last", body_text="Three")),
        ],
    )
    assert _kinds_and_subjects(world, seq) == [
        ("wait", ""),
        ("email", "Hello {{ person.first_name }}"),
        ("wait", ""),
        ("email", "Last"),
    ]
    assert email_status(world, email) == "queued"
    e = t.enrollments
    assert world.db.scalar(sa.select(e.c.next_position).where(e.c.person_id == ann)) == 1
    # The queued email is sent with the edited text (emails render from their step).
    (claimed,) = claim(world.db, now=world.now + timedelta(days=1)).claims
    assert claimed.email_id == email
    assert (claimed.subject, claimed.body_text, claimed.position) == (
        "Hello {{ person.first_name }}",
        "New",
        1,
    )


def test_R26_a_step_with_emails_cannot_be_deleted_or_change_kind(world: World) -> None:
    ann = world.person("ann@acme.com")
    seq = world.sequence(steps=(FIRST, WAIT, SECOND))
    world.enroll(seq, [ann])
    first, wait, second = editable(world.db, workspace_id=world.ws, sequence_id=seq).steps
    with pytest.raises(Conflict, match="step 1 of the saved sequence has 1 email"):
        _edit(world, seq, [EditedStep(WAIT, wait.id), EditedStep(SECOND, second.id)])
    with pytest.raises(InvalidStep, match="keeps its kind") as raised:
        _edit(world, seq, [EditedStep(SECOND, second.id), EditedStep(WAIT, first.id)])
    assert raised.value.index == 1
    assert _kinds_and_subjects(world, seq) == [
        ("email", FIRST.subject),
        ("wait", ""),
        ("email", "Again"),
    ]


def test_a_template_error_names_its_step(world: World) -> None:
    seq = world.sequence(steps=(FIRST,))
    (first,) = editable(world.db, workspace_id=world.ws, sequence_id=seq).steps
    bad = Step(kind="email", subject="Hi {{ persn.first_name }}", body_text="x")
    with pytest.raises(InvalidStep) as raised:
        _edit(world, seq, [EditedStep(FIRST, first.id), EditedStep(bad)])
    assert raised.value.index == 1
    assert "unknown variable 'persn'" in raised.value.reason
    assert str(raised.value).startswith("step 2: subject template")
    with pytest.raises(InvalidInput, match="at least one step"):
        _edit(world, seq, [])
    other = world.sequence("Other", steps=(FIRST,))
    (foreign,) = editable(world.db, workspace_id=world.ws, sequence_id=other).steps
    with pytest.raises(InvalidStep, match="not part of the sequence"):
        _edit(world, seq, [EditedStep(FIRST, foreign.id)])
