"""Timing: repeat a measurement, keep every run, report median and min.

A run that would take hours is stopped at a time limit (SQLite: `interrupt()` from a
timer thread; PostgreSQL: `statement_timeout`) and reported as "more than the limit".
Every run must return the same value: a measurement is also a check.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@dataclass
class Timing:
    section: str
    label: str
    runs: list[float] = field(default_factory=list)
    value: Any = None
    note: str = ""
    limit_hit: float | None = None  # stopped after this many seconds
    scale: float = 1.0  # runs are multiplied by this (sample extrapolated to everyone)

    @property
    def median(self) -> float | None:
        if self.limit_hit is not None:
            return None
        return statistics.median(self.runs) * self.scale if self.runs else None

    @property
    def min(self) -> float | None:
        if self.limit_hit is not None:
            return None
        return min(self.runs) * self.scale if self.runs else None

    def shown(self, which: str) -> str:
        if self.limit_hit is not None:
            return f"> {self.limit_hit:.0f}"
        number = self.median if which == "median" else self.min
        return "-" if number is None else _seconds(number)

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "label": self.label,
            "runs": self.runs,
            "scale": self.scale,
            "median": self.median,
            "min": self.min,
            "limit_hit": self.limit_hit,
            "value": repr(self.value),
            "note": self.note,
        }


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    if value >= 0.01:
        return f"{value:.3f}"
    return f"{value:.4f}"


class Interrupted(Exception):
    pass


@contextmanager
def time_limit(db: Connection, seconds: float) -> Iterator[None]:
    """Stop the statement running on `db` after `seconds`."""
    if db.dialect.name == "postgresql":
        db.exec_driver_sql(f"SET statement_timeout = {int(seconds * 1000)}")
        try:
            yield
        except sa.exc.OperationalError as exc:
            db.rollback()
            if "statement timeout" in str(exc):
                raise Interrupted from exc
            raise
        finally:
            db.exec_driver_sql("SET statement_timeout = 0")
        return
    raw = db.connection.driver_connection
    timer = threading.Timer(seconds, raw.interrupt)  # type: ignore[union-attr]
    timer.start()
    try:
        yield
    except sa.exc.OperationalError as exc:
        if "interrupted" in str(exc):
            raise Interrupted from exc
        raise
    finally:
        timer.cancel()


def measure(
    db: Connection,
    section: str,
    label: str,
    fn: Callable[[], Any],
    *,
    repeat: int,
    budget: float,
    limit: float,
    note: str = "",
    scale: float = 1.0,
) -> Timing:
    """Run `fn` up to `repeat` times, fewer once `budget` seconds are spent."""
    timing = Timing(section, label, note=note, scale=scale)
    for i in range(repeat):
        start = time.perf_counter()
        try:
            with time_limit(db, limit):
                value = fn()
        except Interrupted:
            timing.limit_hit = limit
            db.rollback()
            return timing
        timing.runs.append(time.perf_counter() - start)
        if i and value != timing.value:
            raise AssertionError(f"{label}: run {i + 1} gave {value!r}, run 1 {timing.value!r}")
        timing.value = value
        if sum(timing.runs) > budget:
            break
    return timing
