"""The inbound throughput and write-lock benchmarks, end to end at a tiny size, so they
keep working: the real inbound path on a generated workspace, a real `optout serve` and
`optout import people` beside a lock probe (R4-R7, R23)."""

from __future__ import annotations

from pathlib import Path

from bench.load import Progress

from bench import inbound, lock_hold


def test_inbound_bench_answers_every_message_of_the_mix(tmp_path: Path) -> None:
    result = inbound.run(
        people=300,
        messages=200,
        progress=Progress(),
        database_url=f"sqlite:///{tmp_path / 'ws.sqlite3'}",
    )
    assert result.messages == 200
    assert sum(result.classes.values()) == 200
    assert sum(result.outcomes.values()) == 200
    # Replies, unsubscribes, auto-replies and bounces answer the emails they were built on.
    assert result.matched >= 150
    assert result.per_second > 0
    assert result.classify_per_second > 0


def test_inbound_bench_templates_name_the_person_they_answer_for() -> None:
    pool = inbound.templates()
    assert {t.group for t in pool} == set(inbound.MIX)
    for template in pool:
        assert b"acme-sales.com" not in template.person, template.name
    chosen = inbound.plan(100, pool)
    assert sum(1 for t in chosen if t.group == "reply") == inbound.MIX["reply"]


def test_lock_hold_bench_imports_beside_one_click_unsubscribes(tmp_path: Path) -> None:
    result = lock_hold.run(
        people=300,
        rows=200,
        rate=5,
        quiet=1,
        progress=Progress(),
        database_url=f"sqlite:///{tmp_path / 'ws.sqlite3'}",
    )
    assert result.import_exit == 0
    assert result.people_after == result.people_before + result.new_rows
    assert result.updated == result.rows - result.new_rows
    answered = {a.person_id for a in result.answers if a.status == 200}
    assert answered
    assert result.opted_out == len(answered)
    assert result.probe.waits["import"]


def test_lock_hold_bench_reports_an_import_it_stopped_waiting_for(tmp_path: Path) -> None:
    result = lock_hold.run(
        people=300,
        rows=2000,
        rate=5,
        quiet=1,
        progress=Progress(),
        database_url=f"sqlite:///{tmp_path / 'ws.sqlite3'}",
        import_timeout=0.01,
    )
    assert result.import_exit == lock_hold.TIMED_OUT
    assert result.updated <= result.rows - result.new_rows
    assert "still running when the bench stopped waiting" in lock_hold.report(result)
    assert all(a.status == 200 for a in result.of("quiet"))
