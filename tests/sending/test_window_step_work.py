"""The worker's window step (R38) on a database SQLite has no planner statistics for yet,
as one is after its queue grew through enrollments rather than an import: the step must
read each enrollment's emails through the enrollment, so its work grows with the queue,
not with the queue squared. SQLite only: the statistics gap and the hint that closes it
are SQLite's (PostgreSQL analyzes growing tables by itself and gets the bare condition).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection, Engine

from optout.db import statistics
from optout.db.engine import create_engine
from optout.mail.windows import EVERY_DAY, MINUTES_A_DAY, Schedule
from optout.services.directory import people
from optout.services.enrollments import enrolling
from optout.services.send_queue import realign
from optout.services.sequences import definitions
from tests.conftest import copy_private
from tests.factories import World

NOON = datetime(2026, 11, 10, 12, 0)  # a Tuesday, UTC
# Open all day but in the last minute: a window, so every pass looks for closed ones.
ALL_DAY = Schedule(days=EVERY_DAY, start_minute=0, end_minute=MINUTES_A_DAY - 1)


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "optout.sqlite3"
    copy_private(sqlite_template, path)
    engine = create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def _enroll(db: Connection, *, workspace_id: int, sequence_id: int, numbers: range) -> None:
    ids = [
        people.create(db, workspace_id=workspace_id, email=f"p{n}@c{n % 7}.example", now=NOON)
        for n in numbers
    ]
    enrolling.enroll(
        db, workspace_id=workspace_id, sequence_id=sequence_id, people=ids, actor="t", now=NOON
    )


def _steps_of_window_step(engine: Engine) -> int:
    """SQLite virtual machine steps (in hundreds) of one window step at noon, rolled back."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    with engine.connect() as db:
        raw = db.connection.driver_connection
        assert raw is not None
        with db.begin() as unit:
            raw.set_progress_handler(count, 100)
            try:
                moved = realign.due_now(db, now=NOON)
            finally:
                raw.set_progress_handler(None, 100)
            unit.rollback()
    assert moved == 0  # every email is inside its window: the step only checks
    return steps


def test_R38_the_window_step_reads_each_enrollments_emails_not_the_whole_queue(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.begin() as db:
        world = World(db, NOON)
        world.ruleset()
        sequence_id = definitions.create(
            db,
            workspace_id=world.ws,
            name="Outbound",
            ruleset="Default",
            steps=[definitions.Step(kind="email", subject="Hello", body_text="Hi")],
            from_address="Sam Seller <sam@acme-sales.com>",
            now=NOON,
            schedule=ALL_DAY,
        )
        _enroll(db, workspace_id=world.ws, sequence_id=sequence_id, numbers=range(60))
    with sqlite_engine.connect() as db:
        assert statistics.missing(db)  # as after enrolling, before any import or tune-up
    small = _steps_of_window_step(sqlite_engine)
    with sqlite_engine.begin() as db:
        _enroll(db, workspace_id=world.ws, sequence_id=sequence_id, numbers=range(60, 240))
    large = _steps_of_window_step(sqlite_engine)

    # Four times the queue: about four times the work when each enrollment reads its own
    # emails, about sixteen times when each reads the whole queue.
    assert large < 6 * small, (small, large)
