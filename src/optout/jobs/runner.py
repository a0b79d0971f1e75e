"""The job runner: claim a job, work through its steps, one transaction each, until it is
done, fails, or the runner is asked to stop (then the job goes back in the queue as far
as it got).

Two places run it: the web service, in a background thread (`JobThread`, every kind,
including imports of files it received), and the send worker, a few steps per pass
(kinds that need no local file), so a deployment with the worker on another machine
still gets bulk work done. A job is claimed by one runner at a time (a compare-and-set
on its row); one left `running` by a process that died is taken over when its
heartbeat is stale (`jobs.store`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import conflicts
from optout.db.engine import read_transaction
from optout.db.retry import make_way
from optout.errors import OptoutError
from optout.jobs import kinds, live, store
from optout.jobs.store import JobLost

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def new_runner_id() -> str:
    return f"runner-{secrets.token_hex(8)}"


def run_next(
    engine: Engine,
    *,
    runner: str,
    clock: Clock = utcnow,
    kinds_allowed: Sequence[str] = store.KINDS,
    max_steps: int | None = None,
    stop: threading.Event | None = None,
) -> int | None:
    """Claim one job and work on it; the id of the job worked on, or None when there
    was nothing to do. With `max_steps` (or once `stop` is set) the job goes back in the
    queue after that many steps, for this or another runner to go on with."""
    with read_transaction(engine) as db:
        if not store.any_claimable(db, now=clock(), kinds=kinds_allowed):
            return None
    job = conflicts.run(
        engine, lambda db: store.claim_next(db, runner=runner, now=clock(), kinds=kinds_allowed)
    )
    if job is None:
        return None
    steps, held = 0, 0.0
    prepared: Any = None
    try:
        if job.kind in kinds.PREPARE:  # before the first step's transaction opens
            prepared = kinds.PREPARE[job.kind](
                engine, job, lambda done, total: live.report(job.id, done, total)
            )
        while True:
            if (stop is not None and stop.is_set()) or (
                max_steps is not None and steps >= max_steps
            ):
                conflicts.run(engine, lambda db: store.release(db, job_id=job.id, runner=runner))
                return job.id
            if steps:
                make_way(engine, held)
            began = time.monotonic()
            for attempt in conflicts.attempts(engine):  # a step runs again after a deadlock
                with attempt as db:
                    current = store.held(db, job_id=job.id, runner=runner)
                    now = clock()
                    outcome = kinds.STEPS[current.kind](
                        db,
                        current,
                        now=now,
                        progress=lambda done, total: live.report(job.id, done, total),
                        prepared=prepared,
                    )
                    store.record_step(db, job=current, runner=runner, outcome=outcome, now=now)
            held = time.monotonic() - began
            steps += 1
            if outcome.finished:
                return job.id
    except JobLost:
        log.warning("job %s was taken over by another runner", job.id)
    except OptoutError as exc:
        _fail(engine, job.id, runner, exc.message, clock)
    except Exception as exc:
        log.exception("job %s failed", job.id)
        _fail(engine, job.id, runner, f"stopped by an unexpected error: {exc}", clock)
    finally:
        live.forget(job.id)
    return job.id


def _fail(engine: Engine, job_id: int, runner: str, message: str, clock: Clock) -> None:
    conflicts.run(
        engine,
        lambda db: store.fail(db, job_id=job_id, runner=runner, error=message, now=clock()),
    )


def run_pending(
    engine: Engine,
    *,
    runner: str,
    clock: Clock = utcnow,
    kinds_allowed: Sequence[str] = store.KINDS,
    max_steps: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Work on queued jobs until none is left (or, with `max_steps`, for at most that
    many steps of one job); the number of jobs worked on."""
    worked = 0
    while stop is None or not stop.is_set():
        job_id = run_next(
            engine,
            runner=runner,
            clock=clock,
            kinds_allowed=kinds_allowed,
            max_steps=max_steps,
            stop=stop,
        )
        if job_id is None:
            break
        worked += 1
        if max_steps is not None:
            break
    return worked


WORKER_STEPS_PER_PASS = 20


def worker_pass(engine: Engine, *, clock: Clock = utcnow) -> int:
    """The send worker's share: a few steps of one job that needs no local file, then back
    to sending (the job stays queued for the next pass or another runner)."""
    return run_pending(
        engine,
        runner=new_runner_id(),
        clock=clock,
        kinds_allowed=kinds.ANYWHERE,
        max_steps=WORKER_STEPS_PER_PASS,
    )


class JobThread:
    """The web service's runner: a daemon thread polling for jobs every `poll_seconds`."""

    def __init__(self, engine: Engine, *, poll_seconds: float = 1.0) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.runner = new_runner_id()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="optout-jobs", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the current step; the job goes back in the queue."""
        self.stop.set()
        self.thread.join(timeout=timeout)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                run_pending(self.engine, runner=self.runner, stop=self.stop)
            except Exception:
                log.exception("job runner pass failed; trying again")
            self.stop.wait(self.poll_seconds)
