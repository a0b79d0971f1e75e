"""Sync now, from the CRM page, as a background job (`optout.jobs`): the page queues it and
shows its progress instead of holding the request (and the browser tab) while a slow CRM
answers. The runner reads the CRM before the job's one step, outside any transaction (the
sync commits page by page on its own); the step records what it did. A sync that fails
fails the job with the reason, and the connection's log keeps the failed run, which the
CRM page's status reads (`optout.crm.connection_state`)."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.config import encryption_keys_from
from optout.crm import connections, credentials, sync
from optout.crm.connections import CrmConnection
from optout.crm.protocol import Connector
from optout.db import tables as t
from optout.errors import ConnectorError
from optout.jobs import store
from optout.jobs.store import Job, StepOutcome

KIND = "crm_sync"
CRM_NAMES = {"hubspot": "HubSpot", "salesforce": "Salesforce"}

# Connectors built by the page that queued a job (with the keys the web service holds),
# taken by this process's runner; a runner elsewhere builds its own from its environment.
_handed: dict[int, Connector] = {}
_lock = threading.Lock()


def queue(db: Connection, *, connection: CrmConnection, actor: str, now: datetime) -> Job:
    """Queue a sync of `connection`; the job of a sync already waiting or running, if
    there is one, rather than a second."""
    j = t.jobs
    waiting = db.execute(
        sa.select(j.c.id)
        .where(
            j.c.workspace_id == connection.workspace_id,
            j.c.kind == KIND,
            j.c.state.in_(("queued", "running")),
        )
        .order_by(j.c.id.desc())
    ).scalars()
    for job_id in waiting:
        found = store.get(db, workspace_id=connection.workspace_id, job_id=job_id)
        if found.params.get("connection_id") == connection.id:
            return found
    name = CRM_NAMES.get(connection.kind, connection.kind)
    return store.submit(
        db,
        workspace_id=connection.workspace_id,
        kind=KIND,
        params={"label": f"{name} sync", "connection_id": connection.id, "crm": connection.kind},
        actor=actor,
        now=now,
    )


def hand_over(job_id: int, connector: Connector) -> None:
    """Give this process's runner the connector to sync job `job_id` with (a job that has
    one keeps it; the one given is closed)."""
    with _lock:
        kept = _handed.setdefault(job_id, connector)
    if kept is not connector:
        connector.close()


def _connector(engine: Engine, job: Job) -> Connector:
    with _lock:
        handed = _handed.pop(job.id, None)
    if handed is not None:
        return handed
    with engine.connect() as db:
        connection = connections.by_id(db, connection_id=int(job.params["connection_id"]))
        return credentials.connector(
            db, connection=connection, env=os.environ, keys=encryption_keys_from(os.environ)
        )


def run(engine: Engine, job: Job, progress: sync.Progress) -> sync.SyncReport:
    """The sync itself, before the job's step: ConnectorError with the reason when it
    did not finish (the job fails with it)."""
    connector = _connector(engine, job)
    try:
        [report] = sync.sync_workspace(
            engine,
            workspace_id=job.workspace_id,
            connectors={int(job.params["connection_id"]): connector},
            trigger="manual",
            progress=progress,
        )
    finally:
        connector.close()
    if report.status != "ok":
        raise ConnectorError(f"the sync {report.status}: {report.error}")
    return report


def record(
    db: Connection, job: Job, *, now: datetime, progress: Any, prepared: Any = None
) -> StepOutcome:
    """The job's one step: what the sync read and changed, as its summary."""
    if not isinstance(prepared, sync.SyncReport):
        raise ConnectorError("the sync did not run; ask for it again")
    a = prepared.applied
    result = {
        "crm": job.params.get("crm", ""),
        "read": a.read,
        "created": a.created,
        "updated": a.updated,
        "opted_out": a.opted_out,
        "unenrolled": a.unenrolled,
        "api_calls": prepared.api_calls,
    }
    return StepOutcome(done=a.read, total=a.read, result=result, finished=True)
