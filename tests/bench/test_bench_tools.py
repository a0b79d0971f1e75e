"""The worker scaling benchmark and the service load test, end to end at a tiny size, so
they keep working: real `optout worker` and `optout serve` processes, a real SMTP server
(R1, R3, R28)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import load_service, workers
from tests.conftest import postgres_server_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    return postgres_server_url()


def test_R28_two_worker_processes_deliver_every_email_exactly_once() -> None:
    # PostgreSQL only: it is what the benchmark scales; on SQLite workers take turns, which
    # tests/sending/test_concurrency.py covers.
    (run,) = workers.scale(postgres_server_url(), emails=200, counts=[2], batch=20)
    assert run.emails == 200
    assert sum(run.per_worker) == 200
    assert len(run.per_worker) == 2


def test_R1_R3_no_email_is_claimed_after_an_opt_out_was_answered(database_url: str) -> None:
    outcome = load_service.run(database_url, people=200, requests=10, duration=3, concurrency=4)
    for kind in load_service.KINDS:
        assert outcome.errors(kind) == 0, kind
        assert len(outcome.latencies(kind)) == 10, kind
    assert outcome.checked_people == 20
    assert outcome.sent + outcome.cancelled == 200
    assert outcome.sent < 200  # the opt-outs found queued emails to cancel
