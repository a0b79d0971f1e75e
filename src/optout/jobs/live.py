"""Progress not committed yet (a CSV file being read and checked before the first step of
its import, a companies import that is one step): the runner keeps the count in memory and
the pages of the same process read it from here. Other processes see the committed count."""

from __future__ import annotations

import dataclasses
import threading

from optout.jobs.store import Job

_lock = threading.Lock()
_counts: dict[int, tuple[int, int]] = {}


def report(job_id: int, done: int, total: int) -> None:
    with _lock:
        _counts[job_id] = (done, total)


def forget(job_id: int) -> None:
    with _lock:
        _counts.pop(job_id, None)


def overlay(job: Job) -> Job:
    """The job with the in-memory count of its running step, when this process has one."""
    if job.state != "running":
        return job
    with _lock:
        count = _counts.get(job.id)
    if count is None:
        return job
    return dataclasses.replace(job, done=count[0], total=count[1])
