"""A writing transaction that PostgreSQL fails to break a deadlock is run again, whole,
and commits (R14: a change an admin saves while workers claim is never lost to a
deadlock). The deadlocks here are real: two connections lock two rows in opposite
order, and the server picks its victim."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from optout.db import conflicts
from optout.db.engine import create_engine
from optout.web.conflicts import RetryConflicts
from tests.conftest import migrated_database, postgres_server_url

LOCKS = sa.table("lock_order_test", sa.column("id", sa.Integer), sa.column("hits", sa.Integer))


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated PostgreSQL database with two rows to fight over."""
    postgres_server_url()
    with migrated_database(request, "postgresql", tmp_path) as url:
        engine = create_engine(url)
        with engine.begin() as db:
            db.exec_driver_sql("CREATE TABLE lock_order_test (id int PRIMARY KEY, hits int)")
            db.exec_driver_sql("INSERT INTO lock_order_test VALUES (1, 0), (2, 0)")
            # Find the deadlock in 50 ms rather than the default second.
            db.exec_driver_sql(
                f"ALTER DATABASE \"{engine.url.database}\" SET deadlock_timeout = '50ms'"
            )
        engine.dispose()
        yield engine
        engine.dispose()


def _bump(db: Connection, row: int) -> None:
    db.execute(LOCKS.update().where(LOCKS.c.id == row).values(hits=LOCKS.c.hits + 1))


def _crossing(first: int, second: int, meet: threading.Barrier) -> Callable[[Connection], int]:
    """Work that locks `first`, waits until the other side locked its own first row, then
    locks `second`: two of them in opposite order deadlock on their first attempt."""
    tried = 0

    def work(db: Connection) -> int:
        nonlocal tried
        tried += 1
        _bump(db, first)
        if tried == 1:
            meet.wait(timeout=10)
        _bump(db, second)
        return tried

    return work


def _both(
    runs: tuple[Callable[[], int], Callable[[], int]],
) -> tuple[list[int], list[BaseException]]:
    results: list[int] = []
    errors: list[BaseException] = []

    def go(run: Callable[[], int]) -> None:
        try:
            results.append(run())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results, errors


def _hits(engine: Engine) -> dict[int, int]:
    with engine.connect() as db:
        return {row.id: row.hits for row in db.execute(sa.select(LOCKS.c.id, LOCKS.c.hits))}


def test_R14_two_transactions_locking_in_opposite_order_deadlock_without_the_retry(
    pg: Engine,
) -> None:
    meet = threading.Barrier(2)
    results, errors = _both(
        (
            lambda: conflicts.run(pg, _crossing(1, 2, meet), tries=1),
            lambda: conflicts.run(pg, _crossing(2, 1, meet), tries=1),
        )
    )
    assert len(results) == 1
    assert len(errors) == 1
    assert conflicts.is_conflict(errors[0])
    assert "deadlock" in str(errors[0])
    assert _hits(pg) == {1: 1, 2: 1}  # the victim's work is lost


def test_R14_the_retry_runs_the_deadlock_victim_again_and_both_commit(pg: Engine) -> None:
    meet = threading.Barrier(2)
    results, errors = _both(
        (
            lambda: conflicts.run(pg, _crossing(1, 2, meet)),
            lambda: conflicts.run(pg, _crossing(2, 1, meet)),
        )
    )
    assert errors == []
    assert sorted(results) == [1, 2]  # one went through at once, the victim on its second try
    assert _hits(pg) == {1: 2, 2: 2}


def test_R14_a_conflict_on_every_try_is_raised_after_the_last_one(pg: Engine) -> None:
    tries: list[int] = []

    def always_deadlocks(db: Connection) -> None:
        tries.append(1)
        db.exec_driver_sql(
            "DO $$ BEGIN RAISE EXCEPTION 'made up' USING ERRCODE = 'deadlock_detected'; END $$"
        )

    pauses: list[float] = []
    with pytest.raises(sa.exc.DBAPIError) as raised:
        conflicts.run(pg, always_deadlocks, tries=3, sleep=pauses.append)
    assert conflicts.is_conflict(raised.value)
    assert len(tries) == 3
    assert len(pauses) == 2
    assert all(0 < p <= conflicts.LONGEST_PAUSE for p in pauses)


def test_R14_other_errors_are_not_run_again(pg: Engine) -> None:
    tries: list[int] = []

    def duplicate(db: Connection) -> None:
        tries.append(1)
        db.execute(sa.insert(LOCKS).values(id=1, hits=0))

    with pytest.raises(sa.exc.IntegrityError):
        conflicts.run(pg, duplicate)
    assert tries == [1]


def test_R14_pauses_grow_jittered_and_bounded() -> None:
    for attempt in range(1, 10):
        ceiling = min(conflicts.FIRST_PAUSE * 2 ** (attempt - 1), conflicts.LONGEST_PAUSE)
        for _ in range(50):
            assert ceiling / 2 <= conflicts.pause(attempt) <= ceiling
    assert len({conflicts.pause(3) for _ in range(20)}) > 1


def _web_app(pg: Engine, meet: threading.Barrier, calls: list[str]) -> Starlette:
    """Two pages whose one transaction locks the rows in opposite order, and one that
    commits a first transaction before its deadlock-prone one."""

    def crossing(request: Request) -> PlainTextResponse:
        first, second = (1, 2) if request.path_params["way"] == "up" else (2, 1)
        calls.append(request.path_params["way"])
        body = request.query_params.get("note", "")
        with pg.begin() as db:
            _bump(db, first)
            if calls.count(request.path_params["way"]) == 1:
                meet.wait(timeout=10)
            _bump(db, second)
        return PlainTextResponse(f"done {body}")

    async def crossing_async(request: Request) -> PlainTextResponse:
        text = (await request.body()).decode()
        response = await run_in_threadpool(crossing, request)
        return PlainTextResponse(response.body.decode() + text)

    # As in the web app: inside the server's error handling, which answers 500.
    return Starlette(
        routes=[Route("/cross/{way}", crossing_async, methods=["POST"])],
        middleware=[Middleware(RetryConflicts)],
    )


def test_R14_a_web_request_that_lost_a_deadlock_is_answered_from_a_clean_second_run(
    pg: Engine,
) -> None:
    meet = threading.Barrier(2)
    calls: list[str] = []
    app = _web_app(pg, meet, calls)

    def post(way: str) -> int:
        transport = httpx.ASGITransport(app=app)

        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.post(f"/cross/{way}", content=b" with its body")

        response = anyio.run(send)
        assert response.text == "done  with its body"  # the body was given again
        return response.status_code

    results, errors = _both((lambda: post("up"), lambda: post("down")))
    assert errors == []
    assert results == [200, 200]
    assert sorted(calls) in (["down", "down", "up"], ["down", "up", "up"])  # one ran twice
    assert _hits(pg) == {1: 2, 2: 2}


def test_R14_a_unit_that_committed_before_its_deadlock_is_not_run_again(pg: Engine) -> None:
    meet = threading.Barrier(2)
    runs: list[str] = []

    def unit(first: int, second: int, *, commit_first: bool) -> Callable[[], int]:
        def run() -> int:
            runs.append(f"{first}{second}")
            if commit_first:
                with pg.begin() as db:
                    db.execute(LOCKS.insert().values(id=10 * first + len(runs), hits=0))
            with pg.begin() as db:
                _bump(db, first)
                if runs.count(f"{first}{second}") == 1:
                    meet.wait(timeout=10)
                _bump(db, second)
            return 1

        return lambda: conflicts.run_unit(run)

    results, errors = _both(
        (unit(1, 2, commit_first=True), unit(2, 1, commit_first=True)),
    )
    # Both committed a first transaction: the victim's deadlock is raised, not run again.
    assert len(results) == 1
    assert len(errors) == 1
    assert conflicts.is_conflict(errors[0])
    assert sorted(runs) == ["12", "21"]

    meet = threading.Barrier(2)
    runs.clear()
    results, errors = _both(
        (unit(1, 2, commit_first=False), unit(2, 1, commit_first=False)),
    )
    assert errors == []
    assert results == [1, 1]
    assert len(runs) == 3  # nothing committed before the deadlock: the victim ran again
