"""What a CRM connection's badge says, read from what last happened to it: a connection is
"connected" only when its credentials are there and the newest test or sync went through;
otherwise it says what is missing or what failed, when and why. Tests are kept in the
connection's run log (`crm_sync_log`, trigger `test`) beside its syncs and pushes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.clock import utcnow
from optout.crm.connections import CrmConnection
from optout.crm.sync import RUN_LEASE
from optout.db import tables as t

TEST = "test"  # the trigger of a connection test in the run log
SYNC_TRIGGERS = ("manual", "schedule", "full")


@dataclass(frozen=True)
class ConnectionState:
    code: str  # no_credentials | never_tested | test_failed | sync_failed | syncing | connected
    label: str  # the badge's words
    tone: str  # the badge's colour: ok | warn | danger | skip
    when: datetime | None  # of the test or sync the state comes from
    why: str  # what failed, in the words the test or sync used
    last_good_sync: datetime | None  # when the last sync that went through started

    @property
    def connected(self) -> bool:
        return self.code == "connected"


def needed_secret(kind: str, settings: Mapping[str, Any]) -> str:
    """The secret a connection to `kind` cannot sign in without (a role), or "" when it
    signs in with a key file (Salesforce JWT)."""
    if kind == "hubspot":
        return "token"
    auth = str(settings.get("auth") or "client_credentials")
    return {"client_credentials": "client_secret", "token": "token"}.get(auth, "")


def has_credentials(
    connection: CrmConnection, *, saved: frozenset[str], env: Mapping[str, str]
) -> bool:
    """Whether the secret the connection needs is saved, or named in a variable that is set."""
    role = needed_secret(connection.kind, connection.settings)
    if not role or role in saved:
        return True
    variable = connection.secrets.get(role)
    return bool(variable and env.get(variable, "").strip())


def record_test(
    db: Connection,
    *,
    connection: CrmConnection,
    ok: bool,
    message: str,
    api_calls: int,
    started: datetime,
    finished: datetime,
) -> None:
    """Keep a connection test's outcome in the connection's run log."""
    db.execute(
        t.crm_sync_log.insert().values(
            workspace_id=connection.workspace_id,
            connection_id=connection.id,
            trigger=TEST,
            status="ok" if ok else "failed",
            started_at=started,
            finished_at=finished,
            counts={},
            api_calls=api_calls,
            error="" if ok else message,
        )
    )


def state(
    db: Connection,
    *,
    connection: CrmConnection,
    saved: frozenset[str],
    env: Mapping[str, str],
    now: datetime | None = None,
) -> ConnectionState:
    """The connection's state, from its credentials and its newest test and sync (a sync
    still marked running after its lease died with its process)."""
    now = now or utcnow()
    g = t.crm_sync_log
    mine = g.c.connection_id == connection.id
    last_test = (
        db.execute(sa.select(g).where(mine, g.c.trigger == TEST).order_by(g.c.id.desc()).limit(1))
        .mappings()
        .first()
    )
    last_sync = (
        db.execute(
            sa.select(g)
            .where(mine, g.c.trigger.in_(SYNC_TRIGGERS))
            .order_by(g.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    last_good_sync = db.scalar(
        sa.select(sa.func.max(g.c.started_at)).where(
            mine, g.c.trigger.in_(SYNC_TRIGGERS), g.c.status == "ok"
        )
    )
    if not has_credentials(connection, saved=saved, env=env):
        token = needed_secret(connection.kind, connection.settings) == "token"
        what = "no token saved" if token else "no secret saved"
        return ConnectionState("no_credentials", what, "skip", None, "", last_good_sync)
    newest = max(
        (row for row in (last_test, last_sync) if row is not None),
        key=lambda row: row["id"],
        default=None,
    )
    if newest is None:
        return ConnectionState("never_tested", "never tested", "warn", None, "", None)
    when, why = newest["started_at"], newest["error"]
    if newest["trigger"] == TEST:
        if newest["status"] != "ok":
            return ConnectionState("test_failed", "last test failed", "danger", when, why,
                                   last_good_sync)  # fmt: skip
        return ConnectionState("connected", "connected", "ok", when, "", last_good_sync)
    if newest["status"] == "running" and when >= now - RUN_LEASE:
        return ConnectionState("syncing", "syncing", "warn", when, "", last_good_sync)
    if newest["status"] == "running":
        return ConnectionState("sync_failed", "last sync failed", "danger", when,
                               "it stopped before it finished", last_good_sync)  # fmt: skip
    if newest["status"] == "failed":
        return ConnectionState("sync_failed", "last sync failed", "danger", when, why,
                               last_good_sync)  # fmt: skip
    if newest["status"] == "stopped":
        return ConnectionState("sync_failed", "last sync stopped", "warn", when, why,
                               last_good_sync)  # fmt: skip
    return ConnectionState("connected", "connected", "ok", when, "", last_good_sync)
