"""What the CRM page does, as use-cases over the connection, credential, probe and sync
modules: connect (settings and secrets in one transaction; never without the secret the
CRM signs in with), test (its outcome kept), sync now (in the foreground, or queued as a
background job), and the status of a connection (its state, last runs, counts, errors and
pending write-backs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.config import crm_timeouts_from
from optout.crm import connection_state, connections, credentials, outbound, probe, sync, sync_job
from optout.crm.connection_state import ConnectionState
from optout.crm.connections import CrmConnection
from optout.crm.mapping import OBJECTS, OPT_OUT, READ_WRITE, FieldMapping
from optout.crm.protocol import Kind
from optout.db import tables as t
from optout.errors import InvalidInput, NotFound, OptoutError
from optout.jobs.store import Job


@dataclass(frozen=True)
class Status:
    """Everything the page shows about one connection; no secret among it."""

    connection: CrmConnection
    state: ConnectionState
    mappings: Mapping[str, list[FieldMapping]]  # per CRM object, in sync order
    opt_out: Mapping[str, FieldMapping | None]  # per person object: the master opt-out field
    saved_secrets: frozenset[str]  # roles with a secret stored (encrypted)
    env_secrets: Mapping[str, str]  # role -> environment variable name
    runs: list[dict[str, Any]]  # the latest sync runs and pushes, newest first
    objects: list[sync.ObjectState]
    synced: Mapping[str, int]  # CRM records that became people, companies or deals
    pending_writebacks: int
    webhook_path: str


def find(db: Connection, *, workspace_id: int, kind: str) -> CrmConnection | None:
    return next(
        (c for c in connections.for_workspace(db, workspace_id=workspace_id) if c.kind == kind),
        None,
    )


def connect(
    db: Connection,
    *,
    workspace_id: int,
    kind: str,
    base_url: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    keys: Sequence[str],
    now: datetime,
    allowed_hosts: frozenset[str] = frozenset(),
) -> CrmConnection:
    """Create or update the connection and store the secrets given, encrypted (an empty
    secret keeps the saved one). Both or neither: the caller's transaction holds them.
    An address that plainly names a local or private host is refused at once, unless
    `allowed_hosts` names it (every request is checked again when it is sent)."""
    name = probe.CRM_NAMES.get(kind, kind)
    outbound.check_address_given(base_url, name=name, allowed=allowed_hosts, field="base_url")
    login_url = str(settings.get("login_url") or "")
    if login_url:
        outbound.check_address_given(
            login_url, name=f"{name} sign-in", allowed=allowed_hosts, field="login_url"
        )
    existing = find(db, workspace_id=workspace_id, kind=kind)
    role = connection_state.needed_secret(
        kind, {**(existing.settings if existing else {}), **settings}
    )
    had = existing is not None and (
        role in existing.secrets or role in credentials.saved_roles(db, connection_id=existing.id)
    )
    if role and not had and not str(secrets.get(role, "")).strip():
        what = credentials.ROLE_NAMES[role]
        raise InvalidInput(
            f"{name} cannot be connected without its {what}: paste it in the {what} field"
        )
    connection = connections.connect(
        db, workspace_id=workspace_id, kind=kind, base_url=base_url, settings=settings, now=now
    )
    credentials.save(db, connection=connection, values=secrets, keys=keys, now=now)
    return connections.by_id(db, connection_id=connection.id)


def test(
    engine: Engine,
    *,
    workspace_id: int,
    kind: str,
    env: Mapping[str, str],
    keys: Sequence[str],
) -> probe.ProbeResult:
    """One real call to the CRM with the saved settings and secrets; its outcome is kept,
    for the connection's state."""
    started = utcnow()
    with engine.connect() as db:
        connection = _get(db, workspace_id=workspace_id, kind=kind)
        try:
            # One retry of a refused answer, none of a timeout, and no waiting: the person
            # testing wants an answer now.
            connector = credentials.connector(
                db,
                connection=connection,
                env=env,
                keys=keys,
                sleep=lambda _seconds: None,
                max_retries=1,
                timeouts=replace(crm_timeouts_from(env), retries=0),
            )
        except OptoutError as exc:
            connector = None
            result = probe.ProbeResult(False, exc.message, 0)
    if connector is not None:
        try:
            result = probe.check(connector, now=utcnow())
            if result.ok and _writes_back(engine, connection):
                result = probe.may_write(connector, result)
        finally:
            connector.close()
    with engine.begin() as db:
        connection_state.record_test(
            db,
            connection=connection,
            ok=result.ok,
            message=result.message,
            api_calls=result.api_calls,
            started=started,
            finished=utcnow(),
        )
    return result


def _writes_back(engine: Engine, connection: CrmConnection) -> bool:
    """Whether some field of ours is written back to this CRM (a `read_write` mapping)."""
    with engine.connect() as db:
        found = connections.mappings(db, connection_id=connection.id)
    return any(m.mode == READ_WRITE for m in found)


def queue_sync(
    engine: Engine,
    *,
    workspace_id: int,
    kind: str,
    env: Mapping[str, str],
    keys: Sequence[str],
    actor: str,
) -> Job:
    """The sync the schedule runs, for this connection, as a background job (its progress
    on the job's row); the connector is built here, so a missing secret or key is said at
    once, and handed to this process's job runner."""
    with engine.connect() as db:
        connection = _get(db, workspace_id=workspace_id, kind=kind)
        connector = credentials.connector(db, connection=connection, env=env, keys=keys)
    try:
        with engine.begin() as db:
            job = sync_job.queue(db, connection=connection, actor=actor, now=utcnow())
    except BaseException:
        connector.close()
        raise
    if job.state == "queued":
        sync_job.hand_over(job.id, connector)
    else:
        connector.close()
    return job


def sync_now(
    engine: Engine,
    *,
    workspace_id: int,
    kind: str,
    env: Mapping[str, str],
    keys: Sequence[str],
    full: bool = False,
) -> sync.SyncReport:
    """The same sync the schedule runs, for this connection, now."""
    with engine.connect() as db:
        connection = _get(db, workspace_id=workspace_id, kind=kind)
        connector = credentials.connector(db, connection=connection, env=env, keys=keys)
    try:
        [report] = sync.sync_workspace(
            engine,
            workspace_id=workspace_id,
            connectors={connection.id: connector},
            full=full,
            trigger="manual",
        )
    finally:
        connector.close()
    return report


def status(
    db: Connection, *, connection: CrmConnection, env: Mapping[str, str], runs: int = 5
) -> Status:
    mapped = connections.mappings(db, connection_id=connection.id)
    by_object: dict[str, list[FieldMapping]] = {o.name: [] for o in OBJECTS[connection.kind]}
    for m in mapped:
        by_object.setdefault(m.crm_object, []).append(m)
    people = [o.name for o in OBJECTS[connection.kind] if o.kind is Kind.PERSON]
    opt_out = {
        obj: next((m for m in by_object[obj] if m.our_field == OPT_OUT), None) for obj in people
    }
    g = t.crm_sync_log
    latest = [
        dict(r)
        for r in db.execute(
            sa.select(g)
            .where(g.c.connection_id == connection.id, g.c.trigger != connection_state.TEST)
            .order_by(g.c.id.desc())
            .limit(runs)
        ).mappings()
    ]
    r = t.crm_records
    synced = {
        obj: int(count)
        for obj, count in db.execute(
            sa.select(r.c.crm_object, sa.func.count())
            .where(r.c.connection_id == connection.id, r.c.local_id.is_not(None))
            .group_by(r.c.crm_object)
        )
    }
    w = t.crm_writebacks
    pending = db.scalar(
        sa.select(sa.func.count()).where(
            w.c.workspace_id == connection.workspace_id, w.c.status == "pending"
        )
    )
    saved = frozenset(credentials.saved_roles(db, connection_id=connection.id))
    return Status(
        connection=connection,
        state=connection_state.state(db, connection=connection, saved=saved, env=env),
        mappings=by_object,
        opt_out=opt_out,
        saved_secrets=saved,
        env_secrets=dict(connection.secrets),
        runs=latest,
        objects=sync.states(db, connection_id=connection.id),
        synced=synced,
        pending_writebacks=int(pending or 0),
        webhook_path=f"/crm/webhooks/{connection.kind}/{connection.id}",
    )


def _get(db: Connection, *, workspace_id: int, kind: str) -> CrmConnection:
    found = find(db, workspace_id=workspace_id, kind=kind)
    if found is None:
        raise NotFound(f"this workspace is not connected to {probe.CRM_NAMES.get(kind, kind)} yet")
    return found
