"""CSV imports as jobs, on both databases: applied all at once with the summary, a file
with bad rows imports nothing and leaves its error report, an import whose process died
before it committed is run again from the file, and a gone file fails with the reason."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.jobs import runner, store, submit
from tests.factories import World

Committed = Callable[[], AbstractContextManager[World]]
GOOD = "Email,First name,Company\n" + "".join(
    f"lead{i}@corp{i % 5}.com,Lead {i},corp{i % 5}.com\n" for i in range(30)
)


def _queue(engine: Engine, ws: int, folder: Path, text: str, now: datetime) -> store.Job:
    path = folder / "leads.csv"
    path.write_text(text, encoding="utf-8")
    with engine.begin() as db:
        return submit.csv_import(
            db,
            workspace_id=ws,
            kind="people",
            path=path,
            errors_path=folder / "errors.csv",
            mapping={"Email": "email", "First name": "first_name", "Company": "company_domain"},
            actor="ops@example.com",
            now=now,
        )


def _people(engine: Engine, ws: int) -> int:
    p = t.people
    with engine.connect() as db:
        return db.scalar(sa.select(sa.func.count()).where(p.c.workspace_id == ws)) or 0


def _finished(engine: Engine, ws: int, job_id: int) -> store.Job:
    with engine.connect() as db:
        return store.get(db, workspace_id=ws, job_id=job_id)


def test_R23_import_job_applies_the_file_and_a_second_run_changes_nothing(
    engine: Engine, committed: Committed, now: datetime, tmp_path: Path
) -> None:
    with committed() as world:
        ws = world.ws
    job = _queue(engine, ws, tmp_path, GOOD, now)
    assert runner.run_pending(engine, runner="web", clock=lambda: now) == 1
    done = _finished(engine, ws, job.id)
    assert done.state == "done"
    assert (done.done, done.total) == (30, 30)
    assert done.result is not None
    assert (done.result["applied"], done.result["created"], done.result["errors"]) == (True, 30, 0)
    assert _people(engine, ws) == 30

    again = _queue(engine, ws, tmp_path, GOOD, now)
    runner.run_pending(engine, runner="web", clock=lambda: now)
    result = _finished(engine, ws, again.id).result
    assert result is not None
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 0, 30)
    assert _people(engine, ws) == 30


def test_R23_import_job_with_bad_rows_imports_nothing_and_writes_the_report(
    engine: Engine, committed: Committed, now: datetime, tmp_path: Path
) -> None:
    with committed() as world:
        ws = world.ws
    bad = GOOD + "not-an-address,Broken,corp1.com\n"
    job = _queue(engine, ws, tmp_path, bad, now)
    runner.run_pending(engine, runner="web", clock=lambda: now)
    done = _finished(engine, ws, job.id)
    assert done.state == "done"
    assert done.result is not None
    assert (done.result["applied"], done.result["errors"]) == (False, 1)
    assert done.result["first_errors"][0]["row"] == 32
    assert done.result["first_errors"][0]["value"] == "not-an-address"
    assert _people(engine, ws) == 0
    report = (tmp_path / "errors.csv").read_text(encoding="utf-8").splitlines()
    assert report[0] == "row,column,value,reason"
    assert report[1].startswith("32,Email,")


def test_R23_import_job_of_a_process_that_died_runs_again_from_the_file(
    engine: Engine, committed: Committed, now: datetime, tmp_path: Path
) -> None:
    with committed() as world:
        ws = world.ws
    job = _queue(engine, ws, tmp_path, GOOD, now)
    with engine.begin() as db:  # claimed by a process that died inside its transaction
        assert store.claim_next(db, runner="dead", now=now) is not None
    assert _people(engine, ws) == 0
    later = now + store.STALE_AFTER + timedelta(seconds=1)
    assert runner.run_next(engine, runner="web", clock=lambda: later) == job.id
    done = _finished(engine, ws, job.id)
    assert (done.state, done.restarts) == ("done", 1)
    assert _people(engine, ws) == 30


def test_R34_import_job_whose_file_is_gone_fails_with_the_reason(
    engine: Engine, committed: Committed, now: datetime, tmp_path: Path
) -> None:
    with committed() as world:
        ws = world.ws
    job = _queue(engine, ws, tmp_path, GOOD, now)
    (tmp_path / "leads.csv").unlink()
    runner.run_pending(engine, runner="web", clock=lambda: now)
    failed = _finished(engine, ws, job.id)
    assert failed.state == "failed"
    assert "upload it again" in failed.error
    assert _people(engine, ws) == 0
