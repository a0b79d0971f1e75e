"""A confirmed exclusion save that unenrolls many, as a job, on both databases: the save
commits first, then its unenroll in parts, each its own step (R13, DESIGN guarantee 6);
a save that can no longer be made fails with the reason and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.errors import InvalidFilter
from optout.jobs import kinds, runner, store, submit
from optout.services import fresh_rules
from optout.services.enrollments import enrolling
from optout.services.exclusions import saves
from tests.factories import World

Committed = Callable[[], AbstractContextManager[World]]


def _world(committed: Committed) -> tuple[int, int]:
    with committed() as world:
        staff = [world.person(f"p{i}@acme.com", company="acme.com") for i in range(12)]
        staff += [world.person(f"q{i}@globex.com", company="globex.com") for i in range(5)]
        seq = world.sequence("Outbound")
        world.enroll(seq, staff)
        return world.ws, seq


def _queue(engine: Engine, ws: int, now: datetime, name: str = "Acme is a customer") -> store.Job:
    with engine.begin() as db:
        return submit.exclusion_save(
            db,
            workspace_id=ws,
            name=name,
            level="company",
            filter="company.domain in (acme.com)",
            enabled=True,
            exclude_from_sequences=False,
            unenroll_existing_on_save=True,
            actor="ops@example.com",
            now=now,
        )


def test_R13_exclusion_save_job_saves_then_unenrolls_in_parts(
    engine: Engine, committed: Committed, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kinds, "UNENROLL_PART", 5)
    monkeypatch.setattr(saves, "SWEPT_WITH_THE_SAVE", 5)
    ws, seq = _world(committed)
    job = _queue(engine, ws, now)
    with engine.connect() as db:
        assert fresh_rules.all_specs(db, workspace_id=ws) == []
    steps = 0
    while runner.run_next(engine, runner="r", clock=lambda: now, max_steps=1) is not None:
        steps += 1
        with engine.connect() as db:
            ended = enrolling.count_by_status(db, workspace_id=ws, sequence_id=seq)
            saved = fresh_rules.all_specs(db, workspace_id=ws)
        assert len(saved) == 1  # in force from the first step on
        assert ended.get("unenrolled", 0) == min(12, 5 * steps)  # the save ends its first 5
    with engine.connect() as db:
        done = store.get(db, workspace_id=ws, job_id=job.id)
        (saved,) = fresh_rules.all_specs(db, workspace_id=ws)
        counts = enrolling.count_by_status(db, workspace_id=ws, sequence_id=seq)
    assert done.state == "done"
    assert done.result == {
        "exclusion_id": saved.id,
        "name": "Acme is a customer",
        "enrollments_ended": 12,
        "emails_cancelled": 12,
    }
    assert counts == {"unenrolled": 12, "not_started": 5}
    assert steps == 3  # the save with its first 5, then parts of 5 and 2


def test_R13_exclusion_save_job_whose_name_was_taken_meanwhile_fails_and_changes_nothing(
    engine: Engine, committed: Committed, now: datetime
) -> None:
    ws, seq = _world(committed)
    job = _queue(engine, ws, now)
    with engine.begin() as db:
        saves.create(
            db,
            workspace_id=ws,
            name="Acme is a customer",
            level="people",
            filter="person.email = nobody@acme.com",
            actor="someone-else",
            now=now,
        )
    runner.run_pending(engine, runner="r", clock=lambda: now)
    with engine.connect() as db:
        failed = store.get(db, workspace_id=ws, job_id=job.id)
        counts = enrolling.count_by_status(db, workspace_id=ws, sequence_id=seq)
        names = db.scalars(sa.select(t.exclusions.c.name).where(t.exclusions.c.workspace_id == ws))
        assert list(names) == ["Acme is a customer"]
    assert failed.state == "failed"
    assert "Acme is a customer" in failed.error
    assert counts == {"not_started": 17}


def test_R34_exclusion_save_job_with_a_bad_filter_is_refused_before_queueing(
    engine: Engine, committed: Committed, now: datetime
) -> None:
    ws, _ = _world(committed)
    with engine.begin() as db, pytest.raises(InvalidFilter):
        submit.exclusion_save(
            db,
            workspace_id=ws,
            name="Broken",
            level="company",
            filter="company.nonsense = 1",
            enabled=True,
            exclude_from_sequences=False,
            unenroll_existing_on_save=True,
            actor="ops@example.com",
            now=now,
        )
    with engine.connect() as db:
        assert store.recent(db, workspace_id=ws) == []
