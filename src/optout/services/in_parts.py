"""Long writes applied in parts, each its own short transaction (DESIGN guarantee 6).

A large import, or the end of many enrollments after an exclusion is saved, is worked out
before any transaction opens, then applied as the items `start:stop` of a list, part by
part. Each part commits on its own and leaves the data consistent; between parts the
work makes way (`db.retry.make_way`), so an unsubscribe or another workspace's write
waits behind one part at most. A part that held the write lock longer than HOLD_SECONDS
makes the next ones smaller (a workspace with many rules re-matches each changed person
against all of them); a quick one makes them larger, up to the cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, Self, TypeVar

from sqlalchemy.engine import Connection, Engine

from optout.db.retry import make_way

MOST_ROWS = 2_000  # items applied per transaction at most
LEAST_ROWS = 50
HOLD_SECONDS = 0.5  # what a part aims to hold the write lock


class Addable(Protocol):
    def __add__(self, other: Self) -> Self: ...


A = TypeVar("A", bound=Addable)
R = TypeVar("R")

Progress = Callable[[int, int], None]


def next_part_size(
    size: int, held: float, *, most: int = MOST_ROWS, least: int = LEAST_ROWS
) -> int:
    """The next part's size after a part of `size` items held the lock `held` seconds:
    scaled toward HOLD_SECONDS, never above `most` nor below `least` (nor `most`)."""
    if held <= 0:
        return min(size, most)
    return max(min(least, most), min(most, int(size * HOLD_SECONDS / held)))


def apply_in_parts(
    engine: Engine,
    transaction: Callable[[], AbstractContextManager[Connection]],
    *,
    total: int,
    part: Callable[[Connection, int, int], A],
    nothing: A,
    finish: Callable[[Connection, A], R],
    progress: Progress | None = None,
    most: int = MOST_ROWS,
    least: int = LEAST_ROWS,
    first: int | None = None,
) -> R:
    """Apply the items `0:total` part by part: `part(db, start, stop)` in a transaction of
    its own opened by `transaction()`, its results added up from `nothing`; the last part's
    transaction also runs `finish(db, totals)` (a report, an event with the totals), whose
    answer is returned. With nothing to apply, one transaction runs `part(db, 0, 0)` and
    `finish`. `progress(done, total)` after each committed part but the last. The first
    part has `first` items (default `most`), the next ones `least` to `most`."""
    applied, held, start, size = nothing, 0.0, 0, first or most
    while True:
        stop = min(start + size, total)
        if start:
            make_way(engine, held)
        began = time.monotonic()
        with transaction() as db:
            applied = applied + part(db, start, stop)
            if stop == total:
                return finish(db, applied)
        held = time.monotonic() - began
        if progress is not None:
            progress(stop, total)
        start, size = stop, next_part_size(size, held, most=most, least=least)
