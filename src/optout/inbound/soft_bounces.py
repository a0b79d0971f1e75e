"""The count of transient bounces per address (R7), added up in the database.

Two processes may count the same address at once (the SMTP listener and the IMAP
poller). So a batch never writes back a count it read: acting on its messages records,
in their order, each transient bounce (`count`) and each reply that resets its sender's
count (`reset`); `write` then applies them in at most three statements, whatever the
number of messages:

1. the bounces before an address's first reset in the batch, added with one upsert
   (`failures = failures + excluded.failures`; the count restarts when the stored one is
   older than the quiet window), which returns the counts it leaves;
2. the resets, one DELETE;
3. the bounces after an address's last reset, added with a second upsert.

Each counted bounce gets its count from the value the database returned (bounces between
two resets of one batch count from one and never reach the database). The messages that
counted are then acted on again with those counts (`replaying`), so whether a transient
bounce turns hard is decided from the count in the database: when two processes add to
one address, exactly one of them sees the limit crossed. Upserts go in address order, so
two batches that count the same addresses wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t

Key = tuple[int, str]  # workspace id, canonical address
STATUS_MAX = 32


@dataclass(frozen=True)
class _Step:
    key: Key
    status: str | None  # the bounce's status; None: a reset


class SoftBounces:
    """The transient bounces and resets of one batch, in message order; `mark` and `undo`
    take back what one message recorded."""

    def __init__(self) -> None:
        self._steps: list[_Step] = []
        self._since_reset: dict[Key, int] = {}
        self._when: tuple[datetime, timedelta] | None = None
        self._replay: Iterator[int] | None = None

    def count(self, key: Key, status: str, *, now: datetime, window: timedelta) -> int:
        """One more transient failure of the address; the count restarts after a quiet
        `window`. While replaying, the count the database gave this bounce; before the
        batch is written, a provisional count (this batch's bounces only) that no
        decision may keep: the message is acted on again once the batch is written."""
        if self._replay is not None:
            return next(self._replay)
        if self._when is None:
            self._when = (now, window)
        elif self._when != (now, window):
            raise ValueError("one batch counts transient bounces at one time, with one window")
        self._steps.append(_Step(key, status[:STATUS_MAX]))
        self._since_reset[key] = self._since_reset.get(key, 0) + 1
        return self._since_reset[key]

    def reset(self, key: Key) -> None:
        """The address works (a reply came from it): its count starts again."""
        if self._replay is None:
            self._steps.append(_Step(key, None))
            self._since_reset[key] = 0

    def mark(self) -> int:
        return len(self._steps)

    def undo(self, mark: int) -> None:
        del self._steps[mark:]
        self._since_reset = {}
        for step in self._steps:
            self._since_reset[step.key] = (
                0 if step.status is None else self._since_reset.get(step.key, 0) + 1
            )

    def counted(self, start: int, end: int) -> bool:
        """Whether the steps recorded between two marks (one message's) count a bounce."""
        return any(step.status is not None for step in self._steps[start:end])

    @contextmanager
    def replaying(self, counts: Sequence[int | None]) -> Iterator[None]:
        """Acting on one message again: its bounces get `counts` (those `write` returned
        for its steps), in order; nothing more is recorded."""
        self._replay = iter([c for c in counts if c is not None])
        try:
            yield
        finally:
            self._replay = None

    def write(self, db: Connection) -> list[int | None]:
        """Apply the batch's bounces and resets; returns, step by step, the count each
        bounce leaves (None for a reset)."""
        counts: list[int | None] = [None] * len(self._steps)
        steps_of: dict[Key, list[int]] = defaultdict(list)
        for index, step in enumerate(self._steps):
            steps_of[step.key].append(index)
        before: dict[Key, list[int]] = {}  # bounces before the first reset
        after: dict[Key, list[int]] = {}  # bounces after the last reset
        reset: list[Key] = []
        for key, indexes in steps_of.items():
            runs: list[list[int]] = [[]]
            for index in indexes:
                if self._steps[index].status is None:
                    runs.append([])
                else:
                    runs[-1].append(index)
            if runs[0]:
                before[key] = runs[0]
            if len(runs) > 1:
                reset.append(key)
                for run in runs[1:-1]:
                    for n, index in enumerate(run, start=1):
                        counts[index] = n
                if runs[-1]:
                    after[key] = runs[-1]
        self._add(db, before, counts)
        if reset:
            sb = t.inbound_soft_bounces
            db.execute(
                sb.delete().where(sa.tuple_(sb.c.workspace_id, sb.c.email).in_(sorted(reset)))
            )
        self._add(db, after, counts)
        return counts

    def _add(self, db: Connection, runs: dict[Key, list[int]], counts: list[int | None]) -> None:
        """Add each address's run of bounces to its stored count, in one statement."""
        if not runs:
            return
        assert self._when is not None
        now, window = self._when
        rows = [
            {
                "workspace_id": key[0],
                "email": key[1],
                "failures": len(indexes),
                "first_at": now,
                "last_at": now,
                "last_status": self._steps[indexes[-1]].status,
            }
            for key, indexes in sorted(runs.items())
        ]
        added = db.execute(_upsert(db, quiet_since=now - window), rows)
        total = {(int(ws), str(email)): int(failures) for ws, email, failures in added}
        for key, indexes in runs.items():
            for n, index in enumerate(indexes, start=1):
                counts[index] = total[key] - len(indexes) + n


def _upsert(db: Connection, *, quiet_since: datetime) -> Any:
    """INSERT the rows' counts, or add them to the stored ones: the count restarts when the
    address's last transient bounce came before `quiet_since`. Returns the counts left."""
    sb = t.inbound_soft_bounces
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        insert: Any = postgresql.insert(sb)
    else:
        from sqlalchemy.dialects import sqlite

        insert = sqlite.insert(sb)
    restart = sb.c.last_at < sa.literal(quiet_since, sb.c.last_at.type)
    return insert.on_conflict_do_update(
        index_elements=[sb.c.workspace_id, sb.c.email],
        set_={
            "failures": sa.case(
                (restart, insert.excluded.failures),
                else_=sb.c.failures + insert.excluded.failures,
            ),
            "first_at": sa.case((restart, insert.excluded.first_at), else_=sb.c.first_at),
            "last_at": insert.excluded.last_at,
            "last_status": insert.excluded.last_status,
        },
    ).returning(sb.c.workspace_id, sb.c.email, sb.c.failures)
