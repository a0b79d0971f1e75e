"""Running a writing transaction again after PostgreSQL broke a deadlock or refused a
serialization: a bounded number of attempts with a growing, jittered pause.

PostgreSQL fails one of two transactions that wait for each other (SQLSTATE 40P01) and,
above READ COMMITTED, a transaction whose reads another commit invalidated (40001). Both
are rolled back whole, so the same work may simply run again in a new transaction. The
lock order of `services.decision_index` keeps the known waits from forming; this is what
catches the rest.

Where writing transactions begin, they begin through this:

- a web request (`web.conflicts`) and a CLI command (`cli.app`) are run again whole, as
  long as nothing of theirs committed yet (`counting_commits`): run again after a commit,
  they could do that commit's work twice;
- the send worker and the job runner run each of their transactions through `attempts`
  or `run`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 5  # the most times one unit of work runs
FIRST_PAUSE = 0.02  # seconds before the second attempt; doubled each time, jittered
LONGEST_PAUSE = 0.5
# PostgreSQL: serialization_failure, deadlock_detected.
CONFLICT_STATES = frozenset({"40001", "40P01"})


def is_conflict(error: BaseException) -> bool:
    """Whether `error` is a deadlock or serialization failure: the database rolled the
    transaction back, and the same work may succeed when run again."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    return getattr(error.orig, "sqlstate", None) in CONFLICT_STATES


def pause(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): doubling from
    FIRST_PAUSE up to LONGEST_PAUSE, each between half and the whole of it, so two
    transactions that failed together do not start again together."""
    ceiling: float = min(FIRST_PAUSE * 2.0 ** (attempt - 1), LONGEST_PAUSE)
    return ceiling * (0.5 + random.random() / 2)


class Attempt(AbstractContextManager[Connection]):
    """One try of a writing transaction: commits when its block ends, rolls back when the
    block raises. A conflict, in the block or in the commit, is kept (`conflict`) instead
    of raised, unless this is the last try."""

    def __init__(self, engine: Engine, *, last: bool) -> None:
        self._engine = engine
        self._last = last
        self._begun: AbstractContextManager[Connection] | None = None
        self.conflict: sa.exc.DBAPIError | None = None

    def __enter__(self) -> Connection:
        self._begun = self._engine.begin()
        return self._begun.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool:
        assert self._begun is not None
        try:
            # Commit; or roll back, and let the block's error go on.
            self._begun.__exit__(kind, error, trace)
        except sa.exc.DBAPIError as exc:  # the commit failed
            error = exc
        if self._last or not isinstance(error, sa.exc.DBAPIError) or not is_conflict(error):
            return False  # an error of the block goes on (one of the commit is raising)
        self.conflict = error
        return True


def attempts(
    engine: Engine, *, tries: int = ATTEMPTS, sleep: Callable[[float], None] = time.sleep
) -> Iterator[Attempt]:
    """Tries of one writing transaction, until one ends without a conflict:

        for attempt in attempts(engine):
            with attempt as db:
                ...

    The block runs again, whole, in a new transaction after a deadlock or a serialization
    failure, at most `tries` times; the last conflict is raised. A `return` or `break`
    in the block ends the tries."""
    for number in range(1, tries + 1):
        attempt = Attempt(engine, last=number == tries)
        yield attempt
        if attempt.conflict is None:
            return
        wait = pause(number)
        log.info(
            "transaction rolled back by the database (%s); trying again in %.0f ms",
            _reason(attempt.conflict),
            wait * 1000,
        )
        sleep(wait)


def run(
    engine: Engine,
    work: Callable[[Connection], T],
    *,
    tries: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`work` in a writing transaction, run again after a conflict (`attempts`)."""
    for attempt in attempts(engine, tries=tries, sleep=sleep):
        with attempt as db:
            result = work(db)
        if attempt.conflict is None:
            return result
    raise AssertionError("unreachable: the last attempt raises its conflict")


def _reason(error: sa.exc.DBAPIError) -> str:
    return str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__


# Commits made by the unit of work being run (a request, a command): it is run again
# after a conflict only while this stays at zero.


@dataclass
class Commits:
    count: int = 0


_commits: ContextVar[Commits | None] = ContextVar("optout_commits", default=None)


@contextmanager
def counting_commits() -> Iterator[Commits]:
    """Count the commits made in this context (threads it starts work in included, as
    they run in a copy of it) until the block ends."""
    commits = Commits()
    token = _commits.set(commits)
    try:
        yield commits
    finally:
        _commits.reset(token)


def note_commit() -> None:
    """Called on every commit (`db.engine`)."""
    commits = _commits.get()
    if commits is not None:
        commits.count += 1


def run_unit(
    unit: Callable[[], T],
    *,
    tries: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `unit` (a whole command) again after a conflict, as long as it committed
    nothing before the conflict; otherwise the conflict is raised. Inside another unit
    (a command group's command) it runs once: the outer unit runs it again."""
    if _commits.get() is not None:
        return unit()
    for number in range(1, tries + 1):
        with counting_commits() as commits:
            try:
                return unit()
            except sa.exc.DBAPIError as exc:
                if number == tries or commits.count or not is_conflict(exc):
                    raise
                conflict = exc
        wait = pause(number)
        log.info("rolled back by the database (%s); running again", _reason(conflict))
        sleep(wait)
    raise AssertionError("unreachable: the last attempt raises its conflict")
