"""`process_message` on real databases: what each class of message changes (R4, R5, R6,
R7, R21, R35), how a message is matched to what it answers, and that nothing is
dropped or done twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import InvalidInput, NotFound
from optout.inbound import InboundOptions, InboundResult, process_message
from optout.inbound.listing import list_messages
from optout.inbound.process import Incoming, process_messages
from optout.services import events
from optout.services.directory import people
from optout.services.suppression import optouts
from tests.factories import World
from tests.inbound.helpers import (
    OPTIONS,
    TWO_EMAILS,
    Sent1,
    corpus,
    readdress,
    reply,
    row_of,
    send_due,
    sent_world,
)


def _process(
    s: Sent1,
    raw: bytes,
    *,
    after: timedelta = timedelta(hours=1),
    options: InboundOptions = OPTIONS,
    workspace_id: int | None = None,
) -> InboundResult:
    return process_message(
        s.world.db,
        raw=raw,
        now=s.world.now + after,
        source="test",
        workspace_id=workspace_id,
        options=options,
    )


def _kinds(s: Sent1, name: str) -> list[str]:
    return [e.kind for e in events.history(s.world.db, workspace_id=s.ws, person_id=s.ids[name])]


def _suppressed(s: Sent1, email: str) -> set[str]:
    x = t.suppressions
    return set(
        s.world.db.scalars(sa.select(x.c.kind).where(x.c.workspace_id == s.ws, x.c.email == email))
    )


def test_R5_reply_ends_only_that_enrollment_colleague_continues(world: World) -> None:
    s = sent_world(world)
    other = world.sequence("Webinar", steps=TWO_EMAILS)
    world.enroll(other, [s.ids["ann"]])
    result = _process(
        s,
        readdress(
            corpus("reply_gmail.eml"),
            In_Reply_To=s.message_ids["ann"],
            References=s.message_ids["ann"],
        ),
    )
    assert (result.kind, result.outcome, result.match_by) == ("reply", "replied", "in_reply_to")
    assert s.status("ann") == "replied"
    assert s.status("ben") == "in_progress"
    assert world.status_of(other, s.ids["ann"]) == "not_started"  # other sequences go on
    o = t.outbound_emails
    queued = world.db.scalar(
        sa.select(sa.func.count()).where(o.c.person_id == s.ids["ben"], o.c.status == "queued")
    )
    assert queued == 1  # ben's step 2 is still coming
    assert "reply_received" in _kinds(s, "ann")
    assert "enrollment_ended" in _kinds(s, "ann")


def test_R21_reply_is_activity_from_email_our_sends_are_not(world: World) -> None:
    s = sent_world(world)
    _process(
        s,
        reply(sender="Ann <ann@acme.com>", body="Sounds good.", in_reply_to=s.message_ids["ann"]),
        after=timedelta(hours=2),
    )
    ann = people.get(world.db, workspace_id=s.ws, person_id=s.ids["ann"])
    ben = people.get(world.db, workspace_id=s.ws, person_id=s.ids["ben"])
    replied_at = world.now + timedelta(hours=2)
    assert (ann["last_replied_at"], ann["last_activity_at"]) == (replied_at, replied_at)
    assert ben["last_activity_at"] is None  # only our send touched ben
    assert ben["last_activity_any_at"] == world.now
    a = t.activities
    rows = world.db.execute(
        sa.select(a.c.kind, a.c.source).where(a.c.person_id == s.ids["ann"]).order_by(a.c.id)
    ).all()
    assert [tuple(r) for r in rows] == [("email_sent", "optout"), ("reply", "email")]
    company = world.db.execute(
        sa.select(t.companies.c.last_replied_at).where(t.companies.c.id == ann["company_id"])
    ).scalar_one()
    assert company == replied_at


def test_R6_reply_unenrolls_colleagues_through_a_company_reply_rule(world: World) -> None:
    s = sent_world(world)
    world.exclusion(
        "Replied lately",
        "company",
        "company.last_replied_at within last 30 days",
        exclude_from_sequences=True,
    )
    result = _process(
        s, reply(sender="ann@acme.com", body="Call me.", in_reply_to=s.message_ids["ann"])
    )
    assert s.status("ann") == "replied"
    assert s.status("ben") == "unenrolled"
    assert any("1 enrollment(s) ended by exclusions" in action for action in result.actions)


def test_R4_unsubscribe_reply_opts_out_with_the_reply_as_evidence(world: World) -> None:
    s = sent_world(world)
    raw = readdress(corpus("unsubscribe_gmail_english.eml"), In_Reply_To=s.message_ids["ann"])
    result = _process(s, raw)
    assert (result.kind, result.outcome) == ("unsubscribe", "opted_out")
    assert s.status("ann") == "replied"  # the reply ended the sequence (R5) ...
    assert _suppressed(s, "ann@acme.com") == {"opt_out"}  # ... and opted her out (R4)
    (entry,) = optouts.ledger(world.db, workspace_id=s.ws, email="ann@acme.com")
    assert entry["channel"] == "reply"
    assert entry["evidence"] == "Not interested. Please remove me from your list."
    assert s.status("ben") == "in_progress"
    w = t.crm_writebacks
    assert world.db.scalar(sa.select(w.c.email)) == "ann@acme.com"


def test_R4_with_automatic_opt_out_off_the_person_is_flagged_for_review(world: World) -> None:
    s = sent_world(world)
    world.db.execute(  # no service sets this toggle yet
        t.workspaces.update()
        .where(t.workspaces.c.id == s.ws)
        .values(auto_opt_out_on_unsubscribe_reply=False)
    )
    raw = reply(
        sender="ann@acme.com", body="Bitte keine E-Mails mehr.", in_reply_to=s.message_ids["ann"]
    )
    result = _process(s, raw)
    assert (result.outcome, result.review_needed) == ("review_needed", True)
    assert s.status("ann") == "replied"  # the reply still ends the enrollment
    assert _suppressed(s, "ann@acme.com") == set()
    assert "unsubscribe_review_needed" in _kinds(s, "ann")
    assert row_of(world.db, result.id)["review_needed"] is True


def test_R4_negated_unsubscribe_and_quoted_footer_do_not_opt_out(world: World) -> None:
    s = sent_world(world)
    for name, raw in (
        (
            "ann",
            readdress(
                corpus("reply_interested_quotes_footer.eml"), In_Reply_To=s.message_ids["ann"]
            ),
        ),
        (
            "ben",
            reply(
                sender="ben@acme.com",
                body="Please don't unsubscribe me.",
                in_reply_to=s.message_ids["ben"],
            ),
        ),
    ):
        result = _process(s, raw)
        assert (result.kind, result.outcome) == ("reply", "replied")
        assert s.status(name) == "replied"
    assert _suppressed(s, "ann@acme.com") == _suppressed(s, "ben@acme.com") == set()


def test_R4_mailto_unsubscribe_always_opts_out_even_with_review_on(world: World) -> None:
    s = sent_world(world)
    world.db.execute(
        t.workspaces.update()
        .where(t.workspaces.c.id == s.ws)
        .values(auto_opt_out_on_unsubscribe_reply=False)
    )
    raw = readdress(corpus("unsubscribe_mailto_gmail.eml"), Subject=f"unsubscribe {s.token('ben')}")
    result = _process(s, raw)
    assert (result.kind, result.outcome, result.match_by) == (
        "unsubscribe",
        "opted_out",
        "unsubscribe_token",
    )
    assert s.status("ben") == "opted_out"
    assert _suppressed(s, "ben@acme.com") == {"opt_out"}
    ben = people.get(world.db, workspace_id=s.ws, person_id=s.ids["ben"])
    assert ben["last_replied_at"] is None  # a button, not a reply
    (entry,) = optouts.ledger(world.db, workspace_id=s.ws, email="ben@acme.com")
    assert entry["channel"] == "unsubscribe_link"


def test_R7_auto_reply_changes_nothing_but_history(world: World) -> None:
    s = sent_world(world)
    raw = readdress(corpus("ooo_exchange_english.eml"), In_Reply_To=s.message_ids["ben"])
    result = _process(s, raw)
    assert (result.kind, result.outcome) == ("auto_reply", "auto_reply")
    assert s.status("ben") == "in_progress"
    ben = people.get(world.db, workspace_id=s.ws, person_id=s.ids["ben"])
    assert ben["last_replied_at"] is None
    assert ben["last_activity_at"] is None
    assert _kinds(s, "ben")[-1] == "auto_reply_received"


def test_R7_hard_bounce_suppresses_the_address_and_ends_enrollments(world: World) -> None:
    s = sent_world(world, ["ann@acme.com", "dee@globex.io"])
    raw = readdress(corpus("bounce_postfix_dsn.eml"), In_Reply_To=s.message_ids["dee"])
    result = _process(s, raw)
    assert (result.kind, result.outcome) == ("bounce", "bounced")
    assert s.status("dee") == "bounced"
    assert _suppressed(s, "dee@globex.io") == {"bounce"}
    assert s.status("ann") == "in_progress"
    assert "bounced" in _kinds(s, "dee")


def test_R7_text_bounce_matched_by_the_returned_message_id(world: World) -> None:
    s = sent_world(world, ["ann@acme.com", "dee@globex.io"])
    raw = corpus("bounce_qmail.eml").replace(
        b"<6e5d4c3b-2a19-5087-96a5-b4c3d2e1f0a9@acme-sales.com>", s.message_ids["dee"].encode()
    )
    result = _process(s, raw)
    assert (result.outcome, result.match_by) == ("bounced", "report_message_id")
    assert s.status("dee") == "bounced"


def test_R7_bounce_without_message_id_is_matched_by_the_failed_address(world: World) -> None:
    s = sent_world(world, ["ann@acme.com", "fay@gmail.com"])
    result = _process(s, corpus("bounce_gmail_text_only.eml"))
    assert (result.outcome, result.match_by) == ("bounced", "failed_recipient")
    assert s.status("fay") == "bounced"


def test_R7_transient_bounces_count_and_turn_hard_at_the_limit(world: World) -> None:
    s = sent_world(world, ["ann@acme.com", "gus@globex.io"])
    raw = corpus("bounce_mailbox_full_4xx_dsn.eml")
    outcomes = []
    for day in range(1, 4):
        again = readdress(raw, Message_Id=f"<soft-{day}@mx.acme-sales.com>")
        outcomes.append(_process(s, again, after=timedelta(days=day)).outcome)
        if day < 3:
            assert s.status("gus") == "in_progress"
    assert outcomes == ["soft_bounce", "soft_bounce", "bounced"]
    assert s.status("gus") == "bounced"
    assert _kinds(s, "gus").count("soft_bounce") == 2
    (entry,) = optouts.ledger(world.db, workspace_id=s.ws, email="gus@globex.io")
    assert entry["reason"].startswith("3 transient bounces")


def test_R7_soft_bounce_limit_is_configurable_and_a_reply_resets_the_count(
    world: World,
) -> None:
    s = sent_world(world, ["gus@globex.io"])
    once = InboundOptions(tokens=OPTIONS.tokens, soft_bounce_limit=2)
    raw = corpus("bounce_mailbox_full_4xx_dsn.eml")
    assert _process(s, raw, options=once).outcome == "soft_bounce"
    _process(s, reply(sender="gus@globex.io", body="Mailbox cleaned up, try again"), options=once)
    second = readdress(raw, Message_Id="<soft-2@mx.acme-sales.com>")
    assert _process(s, second, options=once).outcome == "soft_bounce"  # counting from 1 again
    third = readdress(raw, Message_Id="<soft-3@mx.acme-sales.com>")
    assert _process(s, third, options=once).outcome == "bounced"


def test_R7_delay_warning_and_bounce_for_strangers_change_nothing(world: World) -> None:
    s = sent_world(world, ["cat@globex.io"])
    delayed = readdress(corpus("bounce_postfix_delayed_dsn.eml"), In_Reply_To=s.message_ids["cat"])
    assert _process(s, delayed).outcome == "delayed"
    assert s.status("cat") == "in_progress"
    assert _kinds(s, "cat")[-1] == "delivery_delayed"
    stranger = _process(s, corpus("bounce_exim.eml"))  # pablo@initech.es: never emailed
    assert (stranger.match_by, stranger.outcome) == (None, "unmatched")
    assert _suppressed(s, "pablo@initech.es") == set()


def test_matching_order_references_token_verp_then_sender(world: World) -> None:
    s = sent_world(world)
    by_references = reply(
        sender="someone@else.example",
        body="ok",
        headers={"References": f"<x@y> {s.message_ids['ben']}"},
    )
    assert _process(s, by_references).match_by == "references"
    verp = f"sam+{s.token('ann')}@acme-sales.com"
    by_verp = reply(sender="alias@acme.com", body="ok", to=verp)
    result = _process(s, by_verp)
    assert (result.match_by, result.person_id) == ("verp_token", s.ids["ann"])


def test_matching_by_sender_only_within_the_window(world: World) -> None:
    s = sent_world(world)
    recent = _process(s, reply(sender="Ann <ANN@acme.com>", body="New thread, same person"))
    e = t.enrollments
    enrollment = world.db.scalar(sa.select(e.c.id).where(e.c.person_id == s.ids["ann"]))
    assert (recent.match_by, recent.enrollment_id) == ("from_address", enrollment)
    assert s.status("ann") == "replied"
    late = _process(s, reply(sender="ben@acme.com", body="Hello again"), after=timedelta(days=45))
    assert (late.match_by, late.outcome) == (None, "unmatched")
    assert "in the last 30 days" in late.reason


def test_unmatched_messages_are_stored_and_listed_never_dropped(world: World) -> None:
    s = sent_world(world)
    result = _process(s, reply(sender="nobody@nowhere.example", body="Who are you?"))
    assert (result.matched, result.outcome, result.workspace_id) == (False, "unmatched", None)
    scoped = _process(s, reply(sender="x@nowhere.example", body="hi"), workspace_id=s.ws)
    no_sender = _process(s, b"Subject: hi\r\n\r\nwho am I", workspace_id=s.ws)
    assert scoped.workspace_id == no_sender.workspace_id == s.ws
    listed = list_messages(world.db, workspace_id=s.ws, unmatched=True)
    assert [m.result.id for m in listed] == [no_sender.id, scoped.id]
    orphans = list_messages(world.db, workspace_id=None, unmatched=True)
    assert [m.from_address for m in orphans] == ["nobody@nowhere.example"]
    row = row_of(world.db, result.id)
    assert row["raw"].startswith(b"From: nobody@nowhere.example")
    assert row["kind"] == "reply"
    assert row["evidence"]["checks"][-1]["rule"] == "human_reply"


def test_the_same_message_twice_is_done_once(world: World) -> None:
    s = sent_world(world)
    raw = reply(
        sender="ann@acme.com",
        body="Yes please",
        in_reply_to=s.message_ids["ann"],
        message_id="<same-1@client.example>",
    )
    first = _process(s, raw)
    again = _process(s, b"Received: from relay\r\n" + raw, after=timedelta(hours=3))
    assert (again.duplicate, again.id, again.outcome) == (True, first.id, "replied")
    m = t.inbound_messages
    assert world.db.scalar(sa.select(sa.func.count()).select_from(m)) == 1
    assert _kinds(s, "ann").count("reply_received") == 1


def test_workspace_scope_limits_matching(world: World) -> None:
    s = sent_world(world)
    other = World(world.db, world.now, slug="globex-sales")
    raw = reply(sender="ann@acme.com", body="Yes", in_reply_to=s.message_ids["ann"])
    result = _process(s, raw, workspace_id=other.ws)
    assert (result.matched, result.workspace_id) == (False, other.ws)
    assert s.status("ann") == "in_progress"
    with pytest.raises(NotFound):
        _process(s, raw, workspace_id=999_999)


def test_an_address_emailed_by_two_workspaces_is_not_guessed(world: World) -> None:
    s = sent_world(world)
    other = World(world.db, world.now, slug="globex-sales")
    ann2 = other.person("ann@acme.com")
    other.enroll(other.sequence("Other", steps=TWO_EMAILS), [ann2])
    send_due(world.db, world.now)
    result = _process(s, reply(sender="ann@acme.com", body="Which one of you is this?"))
    assert (result.matched, result.outcome) == (False, "unmatched")
    assert "several workspaces" in result.reason


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "non-empty"),
        (b"\x00\x01\x02garbage", "not a MIME message"),
        (b"just some words\n\nno headers", "not a MIME message"),
    ],
)
def test_R34_not_a_message_is_refused_before_any_write(
    world: World, raw: bytes, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        process_message(world.db, raw=raw, now=world.now, source="test")
    assert world.db.scalar(sa.select(sa.func.count()).select_from(t.inbound_messages)) == 0


def test_R34_size_limit_and_source_are_checked(world: World) -> None:
    small = InboundOptions(max_message_bytes=100)
    with pytest.raises(InvalidInput, match="limit is 100"):
        process_message(
            world.db,
            raw=b"From: a@b.c\n\n" + b"x" * 200,
            now=world.now,
            source="test",
            options=small,
        )
    with pytest.raises(InvalidInput, match="source"):
        process_message(world.db, raw=b"From: a@b.c\n\nhi", now=world.now, source=" ")


def test_R6_messages_processed_together_act_as_each_would_alone(world: World) -> None:
    """The ways in that receive many messages at once process them in one transaction:
    each is stored and acted on as alone, a broken one is refused in its place without
    stopping the others, a repeat within the batch is recognized, and the replies'
    activity trips a company rule once for them all."""
    s = sent_world(world, ["ann@acme.com", "ben@acme.com", "cy@acme.com", "dee@globex.io"])
    world.exclusion(
        "Replied lately",
        "company",
        "company.last_replied_at within last 30 days",
        exclude_from_sequences=True,
    )
    first = reply(sender="ann@acme.com", body="Call me.", in_reply_to=s.message_ids["ann"])
    second_reply = reply(sender="ben@acme.com", body="Not now.", in_reply_to=s.message_ids["ben"])
    bounce = readdress(corpus("bounce_postfix_dsn.eml"), In_Reply_To=s.message_ids["dee"])
    results = process_messages(
        world.db,
        messages=[
            Incoming(first, "test"),
            Incoming(b"", "test"),
            Incoming(bounce, "test"),
            Incoming(first, "test"),
            Incoming(second_reply, "test"),
        ],
        now=world.now + timedelta(hours=1),
        options=OPTIONS,
    )
    assert isinstance(results[1], InvalidInput)
    replied, bounced, again, second = (_done(r) for r in (results[0], *results[2:]))
    assert (replied.outcome, bounced.outcome, second.outcome) == ("replied", "bounced", "replied")
    assert again.duplicate
    assert again.id == replied.id
    assert (s.status("ann"), s.status("ben")) == ("replied", "replied")
    assert s.status("cy") == "unenrolled"  # the company rule, tripped by the replies
    assert s.status("dee") == "bounced"
    assert _suppressed(s, "dee@globex.io") == {"bounce"}
    line = "1 enrollment(s) ended by exclusions that the activity now matches"
    for result in (replied, second):
        assert any(a.startswith(line) for a in result.actions)
        assert any(a.startswith(line) for a in row_of(world.db, result.id).evidence["actions"])
    assert not any(a.startswith(line) for a in bounced.actions)
    m = t.inbound_messages
    assert world.db.scalar(sa.select(sa.func.count()).select_from(m)) == 3


def _done(result: InboundResult | InvalidInput) -> InboundResult:
    assert isinstance(result, InboundResult), result
    return result


def test_R4_R5_R7_messages_about_the_same_people_in_one_batch_each_say_what_they_did(
    world: World,
) -> None:
    """Several messages about one person in a batch act once, and each message's actions
    say what it did: the first reply ends the enrollment and a second finds it ended; the
    first hard bounce of an address ends the enrollment, a second copy is a repeat in the
    ledger; an opt-out by mailto beside a bounce of the same address ends the enrollment
    once. The history has one event per change, as if the messages came one by one."""
    s = sent_world(world, ["ann@acme.com", "ben@acme.com", "cy@acme.com"])
    again = "Still interested, see my note below."
    replies = [
        reply(sender="ann@acme.com", body="Call me.", in_reply_to=s.message_ids["ann"]),
        reply(sender="ann@acme.com", body=again, in_reply_to=s.message_ids["ann"]),
    ]
    bounce = corpus("bounce_postfix_dsn.eml")
    bounces = [
        readdress(bounce, In_Reply_To=s.message_ids["ben"], Message_ID=f"<copy{n}@mx.test>")
        for n in (1, 2)
    ]
    mailto = readdress(
        corpus("unsubscribe_mailto_gmail.eml"), Subject=f"unsubscribe {s.token('cy')}"
    )
    cy_bounce = readdress(bounce, In_Reply_To=s.message_ids["cy"], Message_ID="<cy@mx.test>")
    results = [
        _done(r)
        for r in process_messages(
            world.db,
            messages=[Incoming(raw, "test") for raw in (*replies, *bounces, mailto, cy_bounce)],
            now=world.now + timedelta(hours=1),
            options=OPTIONS,
        )
    ]
    ann_first, ann_again, ben_first, ben_again, cy_mailto, cy_bounced = results
    enrollment = ann_first.enrollment_id
    assert enrollment is not None
    assert ann_again.enrollment_id == enrollment
    assert f"enrollment {enrollment} ended: replied" in ann_first.actions
    assert f"enrollment {enrollment} had ended already" in ann_again.actions
    assert s.status("ann") == "replied"

    assert (ben_first.outcome, ben_again.outcome) == ("bounced", "bounced")
    assert "ben@acme.com hard-bounced; 1 enrollment(s) ended" in ben_first.actions
    assert "ben@acme.com hard-bounced; 0 enrollment(s) ended" in ben_again.actions
    ledger = optouts.ledger(world.db, workspace_id=s.ws, email="ben@acme.com")
    assert [(e["kind"], e["action"]) for e in ledger] == [
        ("bounce", "added"),
        ("bounce", "repeated"),
    ]

    assert "cy@acme.com opted out (List-Unsubscribe mailto); 1 enrollment(s) ended" in (
        cy_mailto.actions
    )
    assert "cy@acme.com hard-bounced; 0 enrollment(s) ended" in cy_bounced.actions
    assert s.status("cy") == "opted_out"  # the first of the batch to end it
    assert _suppressed(s, "cy@acme.com") == {"opt_out", "bounce"}

    for name, changes in (("ann", ["enrollment_ended"]), ("ben", ["bounced", "enrollment_ended"])):
        kinds = _kinds(s, name)
        for kind in changes:
            assert kinds.count(kind) == 1, (name, kinds)
    cy = _kinds(s, "cy")
    assert (cy.count("opted_out"), cy.count("bounced"), cy.count("enrollment_ended")) == (1, 1, 1)
    for result in results:
        assert row_of(world.db, result.id).evidence["actions"] == list(result.actions)
