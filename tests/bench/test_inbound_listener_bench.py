"""The inbound benchmark's SMTP arm, end to end at a tiny size, so it keeps working: the
real `optout inbound smtp` in its own process, fed over loopback by several connections at
once, leaves what the direct path leaves (R4-R7)."""

from __future__ import annotations

from pathlib import Path

from bench.inbound_listener import envelope_sender, on_the_wire, where_time_goes
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
    # Grouped by size, the transactions account for every message.
    assert [(g, n, m) for g, n, m, _ in alone.stored.by_size()] == [("1", 40, 40)]
    assert sum(m for _, _, m, _ in together.stored.by_size()) == 40


def test_inbound_bench_envelope_is_what_a_delivering_server_passes_on() -> None:
    bounce = b"Return-Path: <>\nFrom: MAILER-DAEMON@mx.example\n\nGone.\n"
    reply = b"From: Zoe Zimmer <zoe@yahoo.com>\nSubject: Re: hi\n\nThanks.\n"
    assert envelope_sender(bounce) == ""
    assert envelope_sender(reply) == "zoe@yahoo.com"
    assert on_the_wire(reply).count(b"\r\n") == reply.count(b"\n")
    assert b"\n" not in on_the_wire(reply).replace(b"\r\n", b"")


def test_inbound_bench_profile_summary_counts_each_function_once_a_sample(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "smtp1.txt"
    raw.write_text(
        "main (a.py:1);deliver (smtp.py:99);flush (index.py:10) 6\n"
        "main (a.py:1);deliver (smtp.py:99);commit (base.py:5);flush (index.py:12) 3\n"
        "main (a.py:1);select (selectors.py:468) 1\n"
    )
    summary = where_time_goes(raw)
    assert "10 samples" in summary
    on_stack, running = summary.split("running:")
    assert " 90.0%  deliver (smtp.py)" in on_stack
    # flush is on two different lines of one file: one function, 9 samples.
    assert " 90.0%  flush (index.py)" in on_stack
    assert " 90.0%  flush (index.py)" in running
    assert " 10.0%  select (selectors.py)" in running
