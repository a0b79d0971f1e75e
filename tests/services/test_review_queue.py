"""The review queue on both databases: what waits in it (R4 flagged unsubscribe replies,
messages that matched nobody), the three decisions and their record (R2, R35)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import Conflict, NotFound
from optout.inbound import process_message
from optout.services import events
from optout.services.suppression import review_queue
from tests.factories import World
from tests.inbound.helpers import OPTIONS, Sent1, reply, sent_world

REVIEWER = "reviewer@acme-sales.com"


def _review_on(world: World) -> Sent1:
    s = sent_world(world)
    world.db.execute(
        t.workspaces.update()
        .where(t.workspaces.c.id == s.ws)
        .values(auto_opt_out_on_unsubscribe_reply=False)
    )
    return s


def _receive(s: Sent1, raw: bytes) -> int:
    result = process_message(
        s.world.db,
        raw=raw,
        now=s.world.now + timedelta(hours=1),
        source="test",
        workspace_id=s.ws,
        options=OPTIONS,
    )
    return result.id


def _suppressed(s: Sent1, email: str) -> bool:
    x = t.suppressions
    found = s.world.db.scalar(
        sa.select(sa.func.count()).where(x.c.workspace_id == s.ws, x.c.email == email)
    )
    return bool(found)


def test_R4_flagged_unsubscribe_reply_waits_in_the_queue_and_opt_out_decides_it(
    world: World,
) -> None:
    s = _review_on(world)
    flagged = _receive(
        s,
        reply(
            sender="ann@acme.com",
            body="Please remove me from your list.",
            in_reply_to=s.message_ids["ann"],
        ),
    )
    (item,) = review_queue.pending(world.db, workspace_id=s.ws)
    assert item.id == flagged
    assert item.why == "asked to unsubscribe; automatic opt-out is off"
    assert "remove me" in item.text
    assert (item.person_id, item.address) == (s.ids["ann"], "ann@acme.com")
    assert not _suppressed(s, "ann@acme.com")

    later = world.now + timedelta(hours=2)
    done = review_queue.opt_out(
        world.db, workspace_id=s.ws, message_id=flagged, actor=REVIEWER, now=later
    )
    assert (done.email, done.new) == ("ann@acme.com", True)
    assert _suppressed(s, "ann@acme.com")
    assert review_queue.pending(world.db, workspace_id=s.ws) == []
    (record,) = review_queue.decided(world.db, workspace_id=s.ws)
    assert (record.decision, record.reviewed_by, record.reviewed_at) == (
        "opted_out",
        REVIEWER,
        later,
    )
    history = events.history(world.db, workspace_id=s.ws, person_id=s.ids["ann"])
    reviewed = [e for e in history if e.kind == "inbound_reviewed"]
    assert len(reviewed) == 1
    assert reviewed[0].actor == REVIEWER
    assert reviewed[0].detail["decision"] == "opted_out"
    with pytest.raises(Conflict, match="decided already"):
        review_queue.dismiss(world.db, workspace_id=s.ws, message_id=flagged, actor="x", now=later)


def test_unmatched_message_can_be_attached_to_a_person_or_dismissed(world: World) -> None:
    s = _review_on(world)
    stranger = _receive(
        s, reply(sender="ann.private@gmail.com", body="Is this still open?", subject="Hello")
    )
    other = _receive(s, reply(sender="noise@spam.example", body="Buy now", subject="Offer"))
    waiting = review_queue.pending(world.db, workspace_id=s.ws)
    assert [i.id for i in waiting] == [stranger, other]
    assert {i.why for i in waiting} == {"matched no enrollment"}
    assert waiting[0].person_id is None

    with pytest.raises(NotFound, match="no person"):
        review_queue.attach(
            world.db,
            workspace_id=s.ws,
            message_id=stranger,
            email="nobody@acme.com",
            actor=REVIEWER,
            now=world.now,
        )
    person = review_queue.attach(
        world.db,
        workspace_id=s.ws,
        message_id=stranger,
        email="Ann@ACME.com",
        actor=REVIEWER,
        now=world.now,
    )
    assert person == s.ids["ann"]
    review_queue.dismiss(
        world.db, workspace_id=s.ws, message_id=other, actor=REVIEWER, now=world.now
    )
    assert review_queue.pending(world.db, workspace_id=s.ws) == []
    assert review_queue.count_pending(world.db, workspace_id=s.ws) == 0
    decisions = {i.id: i for i in review_queue.decided(world.db, workspace_id=s.ws)}
    assert decisions[stranger].decision == "attached"
    assert decisions[stranger].person_email == "ann@acme.com"
    assert decisions[other].decision == "dismissed"
    # Attaching is no opt-out and leaves the enrollment alone.
    assert not _suppressed(s, "ann@acme.com")
    assert s.status("ann") == "in_progress"
    kinds = [e.kind for e in events.history(world.db, workspace_id=s.ws, person_id=person)]
    assert "inbound_reviewed" in kinds


def test_R2_queue_is_per_workspace(world: World) -> None:
    s = _review_on(world)
    flagged = _receive(
        s, reply(sender="ann@acme.com", body="Unsubscribe me", in_reply_to=s.message_ids["ann"])
    )
    elsewhere = World(world.db, world.now, slug="other-ws")
    assert review_queue.pending(world.db, workspace_id=elsewhere.ws) == []
    with pytest.raises(NotFound):
        review_queue.opt_out(
            world.db, workspace_id=elsewhere.ws, message_id=flagged, actor="x", now=world.now
        )
