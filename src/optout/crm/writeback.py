"""Draining pending CRM write-backs (R3, R31): an opt-out made here lands in the CRM field
mapped to `email_opt_out`, on every record with that address, only where that mapping is
`read_write`; with no such mapping the write-back is `skipped`, nothing is written.

A write that fails is retried with exponential backoff (counted from the row's last
attempt) and marked `failed` after MAX_ATTEMPTS. HTTP requests happen outside any
database transaction; statuses are written after, only on rows still pending.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.crm.mapping import OBJECTS, READ_WRITE, FieldMapping, as_bool
from optout.crm.protocol import Connector, Kind
from optout.db import tables as t
from optout.errors import OptoutError
from optout.services.suppression import writebacks

MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
BATCH = 500


@dataclass(frozen=True)
class Channel:
    """One CRM the workspace is connected to, as the drain sees it."""

    connection_id: int
    crm: str
    mappings: Sequence[FieldMapping]
    connector: Connector


@dataclass
class Drained:
    written: int = 0  # addresses written to this CRM
    failed: int = 0  # addresses whose write failed here (retried later or given up)
    skipped: int = 0  # write-backs with no read_write mapping anywhere


def retry_delay(attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: 1 min, 2, 4, ... at most 6 hours."""
    if attempts <= 0:
        return timedelta(0)
    delay: timedelta = FIRST_RETRY * 2 ** (attempts - 1)
    return min(delay, LONGEST_RETRY)


def due(rows: Sequence[writebacks.Writeback], now: datetime) -> list[writebacks.Writeback]:
    return [w for w in rows if w.updated_at + retry_delay(w.attempts) <= now]


def drain(
    engine: Engine, *, workspace_id: int, channels: Sequence[Channel], now: datetime
) -> dict[int, Drained]:
    """Write every due pending write-back of the workspace to its CRMs; one pass."""
    results = {c.connection_id: Drained() for c in channels}
    with engine.connect() as db:
        pending = due(writebacks.pending_writebacks(db, workspace_id=workspace_id), now)
    for start in range(0, len(pending), BATCH):
        _drain_batch(engine, pending[start : start + BATCH], channels, results, now)
    return results


def _targets(channel: Channel, field: str) -> list[FieldMapping]:
    people = {o.name for o in OBJECTS[channel.crm] if o.kind is Kind.PERSON}
    return [
        m
        for m in channel.mappings
        if m.our_field == field and m.mode == READ_WRITE and m.crm_object in people
    ]


def _drain_batch(
    engine: Engine,
    rows: Sequence[writebacks.Writeback],
    channels: Sequence[Channel],
    results: dict[int, Drained],
    now: datetime,
) -> None:
    by_field: dict[tuple[str, str], list[writebacks.Writeback]] = defaultdict(list)
    for row in rows:
        by_field[(row.field, row.value)].append(row)
    done: list[int] = []
    skipped: list[int] = []
    errors: dict[int, str] = {}
    for (field, raw), group in by_field.items():
        value: object = as_bool(raw) if field == "email_opt_out" else raw
        wired = [(c, m) for c in channels for m in _targets(c, field)]
        if not wired:
            skipped.extend(w.id for w in group)
            for channel in channels:
                results[channel.connection_id].skipped += len(group)
            continue
        emails = [w.email for w in group]
        failed: dict[str, str] = {}
        for channel, target in wired:
            try:
                here = channel.connector.write(target.crm_object, target.crm_field, emails, value)
            except OptoutError as exc:
                here = dict.fromkeys(emails, exc.message)
            results[channel.connection_id].written += len(set(emails) - set(here))
            results[channel.connection_id].failed += len(here)
            for email, message in here.items():
                failed.setdefault(email, f"{channel.crm} {target.crm_object}: {message}")
        for w in group:
            if w.email in failed:
                errors[w.id] = failed[w.email]
            else:
                done.append(w.id)
    _record(engine, done=done, skipped=skipped, errors=errors, now=now)


def _record(
    engine: Engine, *, done: list[int], skipped: list[int], errors: dict[int, str], now: datetime
) -> None:
    w = t.crm_writebacks
    still = w.c.status == "pending"
    with engine.begin() as db:
        if done:
            db.execute(
                w.update()
                .where(w.c.id.in_(done), still)
                .values(status="done", attempts=w.c.attempts + 1, last_error="", updated_at=now)
            )
        if skipped:
            db.execute(
                w.update()
                .where(w.c.id.in_(skipped), still)
                .values(
                    status="skipped",
                    last_error="no read_write mapping for this field",
                    updated_at=now,
                )
            )
        for row_id, message in errors.items():
            db.execute(
                w.update()
                .where(w.c.id == row_id, still)
                .values(
                    attempts=w.c.attempts + 1,
                    last_error=message[:2000],
                    status=sa.case((w.c.attempts + 1 >= MAX_ATTEMPTS, "failed"), else_="pending"),
                    updated_at=now,
                )
            )
