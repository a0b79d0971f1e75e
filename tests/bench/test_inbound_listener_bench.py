"""The inbound benchmark's SMTP arm, end to end at a tiny size, so it keeps working: the
real `optout inbound smtp` in its own process, fed over loopback by several connections at
once, leaves what the direct path leaves (R4-R7)."""

from __future__ import annotations

from pathlib import Path

from bench.inbound_listener import envelope_sender, on_the_wire
from bench.load import Progress

from bench import inbound


def test_R4_R7_inbound_bench_through_the_listener_leaves_what_the_direct_path_does(
    tmp_path: Path,
) -> None:
    result = inbound.run(
        people=300,
        messages=40,
        progress=Progress(),
        database_url=f"sqlite:///{tmp_path / 'ws.sqlite3'}",
        connections=(1, 4),
    )
    assert [arm.connections for arm in result.listener] == [1, 4]
    assert result.matched >= 30
    for arm in result.listener:
        assert arm.codes == {250: 40}, arm.errors
        assert arm.stored.rows == arm.stored.distinct_message_ids == 40
        assert arm.stored.outcomes == result.outcomes
        assert sum(arm.stored.transactions) == 40
        assert arm.seconds > 0
    alone, together = result.listener
    # One connection has one message in flight: the listener has one to a transaction.
    assert alone.stored.transactions == [1] * 40
    assert max(together.stored.transactions) <= 4
    assert "SMTP listener, 4 connections at once" in inbound.report(result)


def test_inbound_bench_envelope_is_what_a_delivering_server_passes_on() -> None:
    bounce = b"Return-Path: <>\nFrom: MAILER-DAEMON@mx.example\n\nGone.\n"
    reply = b"From: Zoe Zimmer <zoe@yahoo.com>\nSubject: Re: hi\n\nThanks.\n"
    assert envelope_sender(bounce) == ""
    assert envelope_sender(reply) == "zoe@yahoo.com"
    assert on_the_wire(reply).count(b"\r\n") == reply.count(b"\n")
    assert b"\n" not in on_the_wire(reply).replace(b"\r\n", b"")
