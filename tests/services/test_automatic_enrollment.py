"""Sequences that enroll by themselves (R41, with R9, R17, R27, R30): who comes to match
is enrolled by the next pass, never past a check, never twice; who is left out is listed
with the reason, and enrolled once the reason is gone."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services import audience_index, decision_index
from optout.services.directory import people
from optout.services.enrollments import automatic, enrolling, refresh
from optout.services.exclusions import archive
from optout.services.sequences import audiences, auto_enroll, edits
from tests.factories import World


def _commit(world: World) -> None:
    """What a commit does: re-match what the writes queued."""
    decision_index.flush(world.db)


def _pass(world: World, at: datetime | None = None) -> int:
    _commit(world)
    return automatic.run(world.db, workspace_id=world.ws, now=at or world.now)


def _switch_on(world: World, sequence: str = "Tech", **dates: datetime) -> None:
    auto_enroll.switch(
        world.db,
        workspace_id=world.ws,
        sequence=sequence,
        on=True,
        actor="admin@acme-sales.com",
        now=world.now,
        **dates,
    )


def _reasons(world: World, sequence: str = "Tech") -> dict[str, str]:
    rows = refresh.not_enrolled(world.db, workspace_id=world.ws, sequence=sequence)
    return {row.email: row.reason for row in rows}


def _cto_sequence(world: World, **ruleset: object) -> int:
    world.audience("CTOs", filter='person.title contains "cto"')
    world.ruleset("Tech rules", **ruleset)
    return world.sequence("Tech", ruleset="Tech rules", audience="CTOs")


def test_R41_switching_on_enrolls_the_members_and_then_each_new_member_by_the_next_pass(
    world: World,
) -> None:
    ann = world.person("ann@acme.com", company="acme.com", title="CTO")
    bob = world.person("bob@acme.com", company="acme.com", title="Office manager")
    seq = _cto_sequence(world)
    _switch_on(world)
    assert _pass(world) == 1
    assert world.status_of(seq, ann) == "not_started"
    assert world.status_of(seq, bob) is None

    cat = world.person("cat@globex.io", company="globex.io", title="Deputy CTO")
    dan = world.person("dan@globex.io", company="globex.io", title="Sales")
    assert _pass(world) == 1
    assert world.status_of(seq, cat) == "not_started"
    assert world.status_of(seq, dan) is None

    people.update(
        world.db,
        workspace_id=world.ws,
        person_id=bob,
        changes={"title": "CTO"},
        actor="admin",
        now=world.now,
    )
    assert _pass(world) == 1
    assert world.status_of(seq, bob) == "not_started"
    e = t.enrollments
    actors = set(world.db.scalars(sa.select(e.c.enrolled_by).where(e.c.sequence_id == seq)))
    assert actors == {automatic.ACTOR}
    assert automatic.enrolled_today(world.db, workspace_id=world.ws, now=world.now) == {seq: 3}


def test_R41_a_member_who_finished_is_not_enrolled_again_by_a_later_write(world: World) -> None:
    ann = world.person("ann@acme.com", company="acme.com", title="CTO")
    seq = _cto_sequence(world)
    _switch_on(world)
    _pass(world)
    e = t.enrollments
    world.db.execute(
        e.update().where(e.c.person_id == ann).values(status="finished", ended_at=world.now)
    )
    people.update(
        world.db,
        workspace_id=world.ws,
        person_id=ann,
        changes={"first_name": "Ann"},
        actor="admin",
        now=world.now,
    )
    assert _pass(world, world.now + timedelta(days=30)) == 0
    assert world.status_of(seq, ann) == "finished"


def test_R41_R30_an_exclusion_keeps_a_member_out_with_the_rule_until_it_is_removed(
    world: World,
) -> None:
    ann = world.person("ann@acme.com", company="acme.com", title="CTO")
    seq = _cto_sequence(world, reenroll_cooldown_days=7)
    _switch_on(world)
    _pass(world)
    saved = world.exclusion(
        "Acme deal", "company", "company.domain in (acme.com)", unenroll_existing_on_save=True
    )
    assert world.status_of(seq, ann) == "unenrolled"
    assert _pass(world) == 0
    assert _reasons(world) == {"ann@acme.com": "excluded by 'Acme deal'"}

    # A new member at the excluded company is listed, never enrolled.
    world.person("amy@acme.com", company="acme.com", title="CTO")
    assert _pass(world) == 0
    assert set(_reasons(world)) == {"ann@acme.com", "amy@acme.com"}

    archive.delete(
        world.db,
        workspace_id=world.ws,
        exclusion_id=saved.exclusion.id,
        actor="admin",
        now=world.now,
        confirm=True,
    )
    assert _pass(world) == 1  # amy, never enrolled; ann waits for her cooldown
    assert _reasons(world) == {"ann@acme.com": "in re-enrollment cooldown"}
    assert _pass(world, world.now + timedelta(days=6)) == 0
    assert _pass(world, world.now + timedelta(days=7, minutes=1)) == 1
    assert world.status_of(seq, ann) == "not_started"
    assert _reasons(world) == {}


def test_R41_R27_the_company_cap_holds_and_the_one_left_out_is_asked_again(world: World) -> None:
    seq = _cto_sequence(world, max_active_per_company=1)
    _switch_on(world)
    ann = world.person("ann@acme.com", company="acme.com", title="CTO")
    amy = world.person("amy@acme.com", company="acme.com", title="CTO")
    assert _pass(world) == 1
    assert _reasons(world) == {"amy@acme.com": "company cap reached"}
    e = t.enrollments
    world.db.execute(
        e.update()
        .where(e.c.person_id == ann)
        .values(status="unenrolled", ended_at=world.now, end_reason="manual")
    )
    assert _pass(world, world.now + automatic.CAP_RETRY) == 1
    assert world.status_of(seq, amy) == "not_started"


def test_R41_R27_the_ones_the_cap_left_out_are_asked_again_when_an_enrollment_there_ends(
    world: World,
) -> None:
    seq = _cto_sequence(world, max_active_per_company=1)
    _switch_on(world)
    ann = world.person("ann@acme.com", company="acme.com", title="CTO")
    amy = world.person("amy@acme.com", company="acme.com", title="CTO")
    cat = world.person("cat@globex.io", company="globex.io", title="CTO")
    world.person("dan@globex.io", company="globex.io", title="CTO")
    assert _pass(world) == 2
    assert _reasons(world) == {
        "amy@acme.com": "company cap reached",
        "dan@globex.io": ("company cap reached"),
    }
    # Not asked again while nothing has changed at their company.
    assert _pass(world, world.now + timedelta(minutes=10)) == 0

    enrolling.unenroll(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        person_ids=[ann],
        actor="admin",
        now=world.now,
    )
    assert _pass(world) == 1  # at once, no clock moved: the place ann left at acme
    assert world.status_of(seq, amy) == "not_started"
    assert world.status_of(seq, cat) == "not_started"
    assert _reasons(world) == {"dan@globex.io": "company cap reached"}


def test_R41_new_members_are_enrolled_before_the_people_asked_again(world: World) -> None:
    seq = _cto_sequence(world, max_active_per_company=1)
    _switch_on(world)
    ann = world.person("ann@acme.com", company="acme.com", title="CTO")
    world.person("amy@acme.com", company="acme.com", title="CTO")
    world.person("abe@acme.com", company="acme.com", title="CTO")
    assert _pass(world) == 1
    enrolling.unenroll(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        person_ids=[ann],
        actor="admin",
        now=world.now,
    )  # amy and abe are asked again, queued first
    cat = world.person("cat@globex.io", company="globex.io", title="CTO")
    _commit(world)
    q = t.enrollment_queue
    assert world.db.scalar(sa.select(sa.func.count()).where(q.c.sequence_id == seq)) == 3
    assert automatic.run(world.db, workspace_id=world.ws, now=world.now, limit=1) == 1
    assert world.status_of(seq, cat) == "not_started"
    assert automatic.run(world.db, workspace_id=world.ws, now=world.now, limit=1) == 1
    assert world.db.scalar(sa.select(sa.func.count()).where(q.c.sequence_id == seq)) == 1


def test_R41_a_pass_sizes_its_batch_to_hold_the_lock_about_half_a_second() -> None:
    size = automatic.FIRST_BATCH
    assert automatic.next_batch_size(size, held=0.25) == 2 * size
    assert automatic.next_batch_size(size, held=2.0) == size // 4
    assert automatic.next_batch_size(size, held=0.0001) == automatic.BATCH
    assert automatic.next_batch_size(size, held=60) == automatic.LEAST_BATCH


def test_R41_R30_a_member_who_leaves_the_audience_leaves_the_not_enrolled_view(
    world: World,
) -> None:
    _cto_sequence(world)
    world.exclusion("Globex", "company", "company.domain in (globex.io)")
    _switch_on(world)
    cat = world.person("cat@globex.io", company="globex.io", title="CTO")
    _pass(world)
    assert set(_reasons(world)) == {"cat@globex.io"}
    people.update(
        world.db,
        workspace_id=world.ws,
        person_id=cat,
        changes={"title": "Office manager"},
        actor="admin",
        now=world.now,
    )
    _pass(world)
    assert _reasons(world) == {}


def test_R41_an_audience_edit_enrolls_its_new_members(world: World) -> None:
    world.person("ann@acme.com", company="acme.com", title="CTO")
    vp = world.person("vic@acme.com", company="acme.com", title="VP Engineering")
    seq = _cto_sequence(world)
    _switch_on(world)
    _pass(world)
    audiences.update(
        world.db,
        workspace_id=world.ws,
        audience_id=world.db.scalar(sa.select(t.audiences.c.id)),
        name="CTOs",
        filter='person.title contains any ("cto", "vp")',
        persona=None,
        actor="admin",
        now=world.now,
    )
    assert _pass(world) == 1
    assert world.status_of(seq, vp) == "not_started"
    assert audience_index.verify(world.db, workspace_id=world.ws, now=world.now) == []


def test_R41_nothing_is_enrolled_before_the_start_or_after_the_end(world: World) -> None:
    ann = world.person("ann@acme.com", company="acme.com", title="CTO")
    seq = _cto_sequence(world)
    _switch_on(world, starts=world.now + timedelta(days=1), ends=world.now + timedelta(days=2))
    assert _pass(world) == 0
    assert _pass(world, world.now + timedelta(days=1)) == 1
    assert world.status_of(seq, ann) == "not_started"
    world.person("cat@globex.io", title="CTO")
    assert _pass(world, world.now + timedelta(days=3)) == 0


def test_R41_a_sequence_without_an_audience_cannot_enroll_by_itself(world: World) -> None:
    world.sequence("Tech")
    with pytest.raises(InvalidInput, match="no audience"):
        _switch_on(world)


def test_R41_a_person_is_never_active_twice_in_one_sequence(world: World) -> None:
    ann = world.person("ann@acme.com", title="CTO")
    seq = _cto_sequence(world)
    _switch_on(world)
    _pass(world)
    row = world.db.execute(sa.select(t.enrollments).where(t.enrollments.c.person_id == ann))
    copy = dict(row.mappings().one())
    del copy["id"]
    with pytest.raises(IntegrityError), world.db.begin_nested():
        world.db.execute(t.enrollments.insert().values(**copy))
    assert world.status_of(seq, ann) == "not_started"


def test_R41_a_sequence_moved_to_another_audience_enrolls_that_audiences_members(
    world: World,
) -> None:
    world.person("ann@acme.com", company="acme.com", title="CTO")
    vic = world.person("vic@globex.io", company="globex.io", title="VP Sales")
    seq = _cto_sequence(world)
    world.exclusion("Acme", "company", "company.domain in (acme.com)")
    world.audience("VPs", filter='person.title contains "vp"')
    _switch_on(world)
    _pass(world)
    assert set(_reasons(world)) == {"ann@acme.com"}
    edits.update_settings(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        changes={"audience": "VPs"},
        actor="admin",
        now=world.now,
    )
    assert _pass(world) == 1
    assert world.status_of(seq, vic) == "not_started"
    assert _reasons(world) == {}
    assert audience_index.verify(world.db, workspace_id=world.ws, now=world.now) == []
    stored = world.db.scalars(
        sa.select(t.audiences.c.name).where(t.audiences.c.matched_at.is_not(None))
    )
    assert list(stored) == ["VPs"]
