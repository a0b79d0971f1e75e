"""Messages processed together (the IMAP poller, `optout inbound process`, the SMTP
listener under load): they are matched and acted on as each would be alone (R4, R5,
R7, R34), what cannot be read is refused or kept for a person to look at without
losing the others, and the batch costs the same statements whatever its size."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.inbound import InboundOptions, InboundResult
from optout.inbound.process import Incoming, process_messages
from optout.services import events
from tests.factories import World
from tests.inbound.helpers import OPTIONS, Sent1, corpus, readdress, reply, row_of, sent_world


def _batch(
    s: Sent1, raws: list[bytes], options: InboundOptions = OPTIONS
) -> list[InboundResult | InvalidInput]:
    return process_messages(
        s.world.db,
        messages=[Incoming(raw, "test") for raw in raws],
        now=s.world.now + timedelta(hours=1),
        options=options,
    )


def _done(result: InboundResult | InvalidInput) -> InboundResult:
    assert isinstance(result, InboundResult), result
    return result


def test_R34_a_message_that_cannot_be_read_or_matched_never_loses_the_others(
    world: World,
) -> None:
    """In one batch: a reply, bytes that are no message, a message whose structure
    cannot be read, a bounce, a reply from a stranger, a VERP address with a forged
    token, and our mailto. The bytes are refused in their place; the unreadable message
    and the two that answer none of our emails are stored for a person to look at; the
    others act as they would alone."""
    s = sent_world(world, ["ann@acme.com", "ben@acme.com", "cy@acme.com"])
    unreadable = (
        b"From: Ann <ann@acme.com>\r\nTo: sam@acme-sales.com\r\nSubject: Re: hi\r\n"
        b"Content-Type: multipart/alternative\r\n\r\n--a\r\nhello\r\n"
    )
    forged = f"sam+{'A' * 60}@acme-sales.com"
    results = _batch(
        s,
        [
            reply(sender="ann@acme.com", body="Call me.", in_reply_to=s.message_ids["ann"]),
            b"\x00\x01 not a message",
            unreadable,
            readdress(corpus("bounce_postfix_dsn.eml"), In_Reply_To=s.message_ids["ben"]),
            reply(sender="dora@initech.es", body="Who is this?"),
            reply(sender="eve@initech.es", body="Stop.", to=forged),
            readdress(
                corpus("unsubscribe_mailto_gmail.eml"), Subject=f"unsubscribe {s.token('cy')}"
            ),
        ],
    )
    assert isinstance(results[1], InvalidInput)
    replied, kept, bounced, stranger, forgery, mailto = (
        _done(r) for r in (results[0], *results[2:])
    )
    assert (replied.outcome, replied.match_by) == ("replied", "in_reply_to")
    assert (kept.kind, kept.rule) == ("unclassified", "unreadable")
    assert (bounced.outcome, bounced.person_id) == ("bounced", s.ids["ben"])
    assert (stranger.outcome, stranger.match_by) == ("unmatched", None)
    assert "dora@initech.es" in stranger.reason
    assert (forgery.outcome, forgery.match_by) == ("unmatched", None)
    assert (mailto.outcome, mailto.match_by) == ("opted_out", "unsubscribe_token")
    assert (s.status("ann"), s.status("ben"), s.status("cy")) == (
        "replied",
        "bounced",
        "opted_out",
    )
    m = t.inbound_messages
    assert world.db.scalar(sa.select(sa.func.count()).select_from(m)) == 6
    for result in (kept, stranger, forgery):
        assert row_of(world.db, result.id)["outcome"] == result.outcome


def test_R7_transient_bounces_and_a_reply_in_one_batch_count_as_one_by_one(
    world: World,
) -> None:
    """The count of transient bounces moves message by message within a batch: two soft
    bounces, a reply that resets the count, then two more reach a limit of two."""
    s = sent_world(world, ["gus@globex.io"])
    raw = corpus("bounce_mailbox_full_4xx_dsn.eml")
    soft = [readdress(raw, Message_Id=f"<soft-{n}@mx.acme-sales.com>") for n in range(4)]
    twice = InboundOptions(tokens=OPTIONS.tokens, soft_bounce_limit=2)
    results = [
        _done(r)
        for r in _batch(
            s,
            [soft[0], reply(sender="gus@globex.io", body="Mailbox cleaned up"), *soft[1:3]],
            twice,
        )
    ]
    assert [r.outcome for r in results] == ["soft_bounce", "replied", "soft_bounce", "bounced"]
    assert "gus@globex.io: transient bounce 1 of 2" in results[2].actions
    kinds = [e.kind for e in events.history(world.db, workspace_id=s.ws, person_id=s.ids["gus"])]
    assert kinds.count("soft_bounce") == 2
    # The count a batch leaves is kept for the next one.
    (again,) = _batch(s, [soft[3]], twice)
    assert "gus@globex.io: transient bounce 3 of 2: now treated as hard" in _done(again).actions[0]
    sb = t.inbound_soft_bounces
    row = world.db.execute(sa.select(sb).where(sb.c.email == "gus@globex.io")).mappings().one()
    assert row["failures"] == 3


@contextmanager
def _statements(db: sa.Connection) -> Iterator[list[str]]:
    said: list[str] = []

    def keep(_c: object, _cur: object, statement: str, *_: object) -> None:
        said.append(statement)

    sa.event.listen(db, "before_cursor_execute", keep)
    try:
        yield said
    finally:
        sa.event.remove(db, "before_cursor_execute", keep)


def test_R5_R7_a_batch_asks_the_same_statements_for_twelve_messages_as_for_three(
    world: World,
) -> None:
    """Matching and acting are set-based over the batch: replies, hard bounces, transient
    bounces and mailto opt-outs about twelve people ask the database exactly what the same
    mix about three people asks. Those who reply also bounce softly before and after their
    reply, so the counts are added to, reset and added to again."""
    names = [f"p{n}" for n in range(18)]
    s = sent_world(world, [f"{name}@co{n % 4}.example" for n, name in enumerate(names)])
    bounce = corpus("bounce_postfix_dsn.eml")
    soft = corpus("bounce_mailbox_full_4xx_dsn.eml")
    mailto = corpus("unsubscribe_mailto_gmail.eml")

    def soft_bounce(name: str, when: str) -> bytes:
        return readdress(
            soft, In_Reply_To=s.message_ids[name], Message_ID=f"<s-{when}-{name}@mx.test>"
        )

    def mix(people: list[str]) -> list[bytes]:
        raws = []
        for n, name in enumerate(people):
            address = f"{name}@co{names.index(name) % 4}.example"
            if n % 3 == 0:
                raws.append(soft_bounce(name, "before"))
                raws.append(reply(sender=address, body="Sure.", in_reply_to=s.message_ids[name]))
                raws.append(soft_bounce(name, "after"))
            elif n % 3 == 1:
                raws.append(
                    readdress(
                        bounce, In_Reply_To=s.message_ids[name], Message_ID=f"<b-{name}@mx.test>"
                    )
                )
            else:
                raws.append(readdress(mailto, Subject=f"unsubscribe {s.token(name)}"))
        return raws

    _batch(s, mix(names[:3]))  # the batch's temporary tables exist from now on
    three, twelve = mix(names[3:6]), mix(names[6:18])
    with _statements(world.db) as few:
        small = _batch(s, three)
    with _statements(world.db) as many:
        large = _batch(s, twelve)
    assert all(isinstance(r, InboundResult) and r.matched for r in [*small, *large])
    assert {_done(r).outcome for r in large} == {"replied", "bounced", "opted_out", "soft_bounce"}
    assert sum("transient bounce 1 of 3" in " ".join(_done(r).actions) for r in large) == 8
    assert len(many) == len(few), "\n".join(
        difflib.unified_diff([q[:300] for q in few], [q[:300] for q in many], lineterm="")
    )
