"""The CRM sync engine (R32): incremental, resumable, rate-limited, logged.

Per CRM object, changes since the bookmark (minus an overlap, for clock skew and search
index lag) are read page by page. Each page is applied and enforced in its own
transaction (R14), and the bookmark moves with it: to the page's latest modification,
never past the run's start. A crash loses at most the page in flight; the overlap and
the record map make re-reading harmless. After the objects, pending write-backs are
drained. `run_scheduled` repeats all this every 15 minutes by default.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.config import encryption_keys_from
from optout.crm import connections, credentials
from optout.crm.apply import Applied, apply_records
from optout.crm.connections import CrmConnection
from optout.crm.protocol import BudgetExhausted, Connector
from optout.crm.records import Target, complete
from optout.crm.writeback import Channel, Drained, drain
from optout.db import statistics
from optout.db import tables as t
from optout.errors import Conflict, OptoutError

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=5)
DEFAULT_INTERVAL = timedelta(minutes=15)
RUN_LEASE = timedelta(hours=1)  # a run still `running` after this is taken as crashed

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]  # (parts done, parts in all): objects, then write-backs
ConnectorFactory = Callable[[CrmConnection, Mapping[str, str]], Connector]


@dataclass
class SyncReport:
    connection_id: int
    crm: str
    status: str  # ok | failed | stopped
    applied: Applied = field(default_factory=Applied)
    writebacks: Drained = field(default_factory=Drained)
    api_calls: int = 0
    error: str = ""
    log_id: int = 0


def sync_connection(
    engine: Engine,
    *,
    connection_id: int,
    connector: Connector,
    now: Clock = utcnow,
    full: bool = False,
    trigger: str = "manual",
    overlap: timedelta = OVERLAP,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Read every object's changes into the workspace, page by page; `progress` is told
    how many objects are done after each one."""
    started = now()
    calls_before = connector.calls
    with engine.begin() as db:
        connection = connections.by_id(db, connection_id=connection_id)
        target = Target(
            connection.workspace_id,
            connection.id,
            connection.kind,
            connector.objects,
            connections.mappings(db, connection_id=connection.id),
        )
        log_id = _claim(db, connection, trigger="full" if full else trigger, started=started)
    report = SyncReport(connection.id, connection.kind, "ok", log_id=log_id)
    try:
        for done, obj in enumerate(connector.objects, start=1):
            _sync_object(engine, target, connector, obj.name, started, full, overlap, now, report)
            if progress is not None:
                progress(done)
    except BudgetExhausted as exc:
        report.status, report.error = "stopped", exc.message
    except OptoutError as exc:
        report.status, report.error = "failed", exc.message
    finally:
        report.api_calls = connector.calls - calls_before
        with engine.begin() as db:
            _close_log(db, report, finished=now())
            statistics.after_bulk_load(db, report.applied.created + report.applied.updated)
    return report


def _sync_object(
    engine: Engine,
    target: Target,
    connector: Connector,
    obj: str,
    started: datetime,
    full: bool,
    overlap: timedelta,
    now: Clock,
    report: SyncReport,
) -> None:
    with engine.begin() as db:
        bookmark = _state(db, target.connection_id, obj, status="running", started=started)
    since = None if full or bookmark is None else bookmark - overlap
    try:
        for page in connector.changes(obj, since=since, full=full):
            with engine.connect() as db:
                records, forced = complete(db, target, page.records, connector.fetch)
            with engine.begin() as db:
                applied = apply_records(
                    db, target, records, now=now(), forced=forced, dedupe=not full
                )
                if page.watermark is not None:
                    _advance(db, target.connection_id, obj, min(page.watermark, started))
                report.applied.add(applied)
                _progress(db, report, calls=connector.calls)
    except OptoutError as exc:
        status = "stopped" if isinstance(exc, BudgetExhausted) else "failed"
        with engine.begin() as db:
            _state(db, target.connection_id, obj, status=status, error=exc.message, finished=now())
        raise
    with engine.begin() as db:
        _advance(db, target.connection_id, obj, started)
        _state(db, target.connection_id, obj, status="idle", finished=now())


def sync_workspace(
    engine: Engine,
    *,
    workspace_id: int,
    connectors: Mapping[int, Connector],
    now: Clock = utcnow,
    full: bool = False,
    trigger: str = "manual",
    progress: Progress | None = None,
) -> list[SyncReport]:
    """Sync each connection of the workspace, then drain its pending write-backs;
    `progress` hears of each object done, and of the write-backs as the last part."""
    parts = sum(len(connector.objects) for connector in connectors.values()) + 1
    reports: list[SyncReport] = []
    for cid, connector in connectors.items():
        before = sum(len(connectors[r.connection_id].objects) for r in reports)
        reports.append(
            sync_connection(
                engine,
                connection_id=cid,
                connector=connector,
                now=now,
                full=full,
                trigger=trigger,
                progress=None if progress is None else _shifted(progress, before, parts),
            )
        )
    with engine.connect() as db:
        channels = [
            Channel(
                cid,
                connections.by_id(db, connection_id=cid).kind,
                connections.mappings(db, connection_id=cid),
                connector,
            )
            for cid, connector in connectors.items()
        ]
    drained = drain(engine, workspace_id=workspace_id, channels=channels, now=now())
    for report in reports:
        report.writebacks = drained[report.connection_id]
        report.api_calls = connectors[report.connection_id].calls
    with engine.begin() as db:
        for report in reports:
            _progress(db, report, calls=report.api_calls)
    if progress is not None:
        progress(parts, parts)
    return reports


def _shifted(progress: Progress, before: int, parts: int) -> Callable[[int], None]:
    """A connection's count of objects done, as parts of the whole workspace's sync."""
    return lambda done: progress(before + done, parts)


def run_once(
    engine: Engine,
    *,
    env: Mapping[str, str] | None = None,
    now: Clock = utcnow,
    factory: ConnectorFactory | None = None,
    trigger: str = "schedule",
) -> list[SyncReport]:
    """One scheduled round: every enabled connection of every workspace."""
    env = os.environ if env is None else env
    with engine.connect() as db:
        workspace_ids = list(
            db.scalars(
                sa.select(t.crm_connections.c.workspace_id)
                .where(t.crm_connections.c.enabled.is_(True))
                .distinct()
                .order_by(t.crm_connections.c.workspace_id)
            )
        )
    reports: list[SyncReport] = []
    for workspace_id in workspace_ids:
        built: dict[int, Connector] = {}
        try:
            # Read first, build after: no database connection stays open meanwhile.
            with engine.connect() as db:
                wanted = [
                    (
                        c,
                        connections.mappings(db, connection_id=c.id),
                        credentials.stored(db, connection=c, keys=encryption_keys_from(env)),
                    )
                    for c in connections.for_workspace(db, workspace_id=workspace_id)
                    if c.enabled
                ]
            for connection, fields, stored in wanted:
                built[connection.id] = (
                    factory(connection, env)
                    if factory is not None
                    else connections.connector_for(connection, fields, env, stored=stored)
                )
            reports += sync_workspace(
                engine, workspace_id=workspace_id, connectors=built, now=now, trigger=trigger
            )
        except (OptoutError, sa.exc.SQLAlchemyError) as exc:
            log.error("CRM sync of workspace %s failed: %s", workspace_id, exc)
        finally:
            for connector in built.values():
                connector.close()
    return reports


def run_scheduled(
    engine: Engine,
    stop_event: threading.Event,
    interval: timedelta = DEFAULT_INTERVAL,
    *,
    env: Mapping[str, str] | None = None,
    now: Clock = utcnow,
    factory: ConnectorFactory | None = None,
) -> None:
    """Sync every `interval` (15 minutes by default) until `stop_event` is set."""
    while not stop_event.is_set():
        for report in run_once(engine, env=env, now=now, factory=factory):
            log.info(
                "CRM sync %s: %s, %s records read, %s API calls",
                report.crm,
                report.status,
                report.applied.read,
                report.api_calls,
            )
        stop_event.wait(interval.total_seconds())


# --- state and log -----------------------------------------------------------------------


def _claim(db: Connection, connection: CrmConnection, *, trigger: str, started: datetime) -> int:
    """Open the run's log row; Conflict while another run of the connection is going."""
    c, g = t.crm_connections, t.crm_sync_log
    db.execute(sa.select(c.c.id).where(c.c.id == connection.id).with_for_update())
    running = db.scalar(
        sa.select(g.c.id).where(
            g.c.connection_id == connection.id,
            g.c.status == "running",
            g.c.trigger != "webhook",
            g.c.started_at > started - RUN_LEASE,
        )
    )
    if running is not None:
        raise Conflict(f"a sync of the {connection.kind} connection is running (log {running})")
    return int(
        db.execute(
            g.insert()
            .values(
                workspace_id=connection.workspace_id,
                connection_id=connection.id,
                trigger=trigger,
                status="running",
                started_at=started,
                counts={},
                api_calls=0,
                error="",
            )
            .returning(g.c.id)
        ).scalar_one()
    )


def _progress(db: Connection, report: SyncReport, *, calls: int) -> None:
    g = t.crm_sync_log
    db.execute(
        g.update().where(g.c.id == report.log_id).values(counts=counts_of(report), api_calls=calls)
    )


def counts_of(report: SyncReport) -> dict[str, Any]:
    return {
        **report.applied.as_dict(),
        "writebacks": {
            "written": report.writebacks.written,
            "failed": report.writebacks.failed,
            "skipped": report.writebacks.skipped,
        },
    }


def _close_log(db: Connection, report: SyncReport, *, finished: datetime) -> None:
    g = t.crm_sync_log
    db.execute(
        g.update()
        .where(g.c.id == report.log_id)
        .values(
            status=report.status,
            finished_at=finished,
            counts=counts_of(report),
            api_calls=report.api_calls,
            error=report.error,
        )
    )


def record_push(
    db: Connection,
    *,
    target: Target,
    applied: Applied,
    started: datetime,
    finished: datetime,
    api_calls: int,
) -> None:
    """A change pushed by the CRM (webhook), in the same log as the runs."""
    db.execute(
        t.crm_sync_log.insert().values(
            workspace_id=target.workspace_id,
            connection_id=target.connection_id,
            trigger="webhook",
            status="ok",
            started_at=started,
            finished_at=finished,
            counts={**applied.as_dict()},
            api_calls=api_calls,
            error="",
        )
    )


def _state(
    db: Connection,
    connection_id: int,
    obj: str,
    *,
    status: str,
    started: datetime | None = None,
    finished: datetime | None = None,
    error: str = "",
) -> datetime | None:
    """Set an object's sync status; returns its bookmark."""
    s = t.crm_sync_state
    where = sa.and_(s.c.connection_id == connection_id, s.c.crm_object == obj)
    row = db.execute(sa.select(s.c.bookmark).where(where)).first()
    values: dict[str, Any] = {"status": status, "last_error": error}
    if started is not None:
        values["last_started_at"] = started
    if finished is not None:
        values["last_finished_at"] = finished
    if row is None:
        db.execute(s.insert().values(connection_id=connection_id, crm_object=obj, **values))
        return None
    db.execute(s.update().where(where).values(**values))
    bookmark: datetime | None = row.bookmark
    return bookmark


def _advance(db: Connection, connection_id: int, obj: str, moment: datetime) -> None:
    """Move the bookmark forward to `moment` (never back)."""
    s = t.crm_sync_state
    db.execute(
        s.update()
        .where(
            s.c.connection_id == connection_id,
            s.c.crm_object == obj,
            sa.or_(s.c.bookmark.is_(None), s.c.bookmark < moment),
        )
        .values(bookmark=moment)
    )


@dataclass(frozen=True)
class ObjectState:
    crm_object: str
    bookmark: datetime | None
    status: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_error: str


def states(db: Connection, *, connection_id: int) -> list[ObjectState]:
    s = t.crm_sync_state
    rows = db.execute(
        sa.select(s).where(s.c.connection_id == connection_id).order_by(s.c.crm_object)
    ).mappings()
    return [
        ObjectState(
            r["crm_object"],
            r["bookmark"],
            r["status"],
            r["last_started_at"],
            r["last_finished_at"],
            r["last_error"],
        )
        for r in rows
    ]


def history(db: Connection, *, workspace_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs and pushes of the workspace, newest first."""
    g, c = t.crm_sync_log, t.crm_connections
    rows = db.execute(
        sa.select(g, c.c.kind)
        .join(c, c.c.id == g.c.connection_id)
        .where(g.c.workspace_id == workspace_id)
        .order_by(g.c.id.desc())
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]
