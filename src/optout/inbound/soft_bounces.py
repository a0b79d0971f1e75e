"""The count of transient bounces per address (R7), kept for a batch in memory: read in
one statement for every address the batch may count or reset, changed message by message
in their order (a reply resets its sender's count, a transient bounce adds one, restarting
after a quiet window), and written back in at most three statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.filters.sqlfunc import in_list

Key = tuple[int, str]  # workspace id, canonical address


@dataclass(frozen=True)
class Count:
    failures: int
    first_at: datetime
    last_at: datetime
    last_status: str
    id: int | None = None  # the stored row, when there was one before the batch


class SoftBounces:
    """The batch's counts; `mark` and `undo` take back what one message changed."""

    def __init__(self, stored: dict[Key, Count]) -> None:
        self._stored = stored
        self._now: dict[Key, Count | None] = dict(stored)
        self._undo: list[tuple[Key, Count | None, bool]] = []

    @classmethod
    def read(cls, db: Connection, keys: Iterable[Key]) -> SoftBounces:
        wanted = set(keys)
        if not wanted:
            return cls({})
        sb = t.inbound_soft_bounces
        rows = db.execute(
            sa.select(
                sb.c.id,
                sb.c.workspace_id,
                sb.c.email,
                sb.c.failures,
                sb.c.first_at,
                sb.c.last_at,
                sb.c.last_status,
            ).where(
                in_list(sb.c.workspace_id, sorted({w for w, _ in wanted})),
                in_list(sb.c.email, sorted({e for _, e in wanted})),
            )
        )
        return cls(
            {
                (row.workspace_id, row.email): Count(
                    int(row.failures), row.first_at, row.last_at, row.last_status, row.id
                )
                for row in rows
                if (row.workspace_id, row.email) in wanted
            }
        )

    def count(self, key: Key, status: str, *, now: datetime, window: timedelta) -> int:
        """One more transient failure of the address; the count restarts after a quiet
        `window`. Returns the count."""
        before = self._now.get(key)
        status = status[:32]
        if before is None:
            after = Count(1, now, now, status)
        elif now - before.last_at > window:
            after = replace(before, failures=1, first_at=now, last_at=now, last_status=status)
        else:
            after = replace(before, failures=before.failures + 1, last_at=now, last_status=status)
        self._set(key, after)
        return after.failures

    def reset(self, key: Key) -> None:
        """The address works (a reply came from it): its count starts again."""
        if self._now.get(key) is not None:
            self._set(key, None)

    def mark(self) -> int:
        return len(self._undo)

    def undo(self, mark: int) -> None:
        while len(self._undo) > mark:
            key, before, had = self._undo.pop()
            if had:
                self._now[key] = before
            else:
                self._now.pop(key, None)

    def _set(self, key: Key, value: Count | None) -> None:
        self._undo.append((key, self._now.get(key), key in self._now))
        self._now[key] = value

    def write(self, db: Connection) -> None:
        """The counts as the batch left them: rows reset deleted, changed ones updated,
        new ones inserted, each in one statement."""
        sb = t.inbound_soft_bounces
        gone: list[int] = []
        changed: list[dict[str, object]] = []
        added: list[dict[str, object]] = []
        for key, count in self._now.items():
            stored = self._stored.get(key)
            if count == stored:
                continue
            if count is None:
                if stored is not None and stored.id is not None:
                    gone.append(stored.id)
                continue
            values = {
                "failures": count.failures,
                "first_at": count.first_at,
                "last_at": count.last_at,
                "last_status": count.last_status,
            }
            if stored is not None and stored.id is not None:
                changed.append({"row_id": stored.id, **values})
            else:
                added.append({"workspace_id": key[0], "email": key[1], **values})
        if gone:
            db.execute(sb.delete().where(in_list(sb.c.id, sorted(gone))))
        if changed:
            db.execute(
                sb.update()
                .where(sb.c.id == sa.bindparam("row_id"))
                .values(
                    failures=sa.bindparam("failures"),
                    first_at=sa.bindparam("first_at"),
                    last_at=sa.bindparam("last_at"),
                    last_status=sa.bindparam("last_status"),
                ),
                changed,
            )
        if added:
            db.execute(sb.insert(), added)
