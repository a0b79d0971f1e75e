"""CRM connections and their field mappings (R31), and the connector each one stands for.

A connection row never holds a secret. A secret is either kept encrypted in the database
(`optout.crm.credentials`, entered on the CRM page) or read from an environment variable
the connection names (a HubSpot private-app token and webhook client secret, a Salesforce
client secret or access token: `optout crm connect --token-env ...`). A stored secret wins
over a named variable for the same role.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.config import (
    CrmTimeouts,
    crm_allowed_hosts_from,
    crm_key_folder_from,
    crm_timeouts_from,
)
from optout.crm import mapping
from optout.crm.hubspot import HubSpotConnector
from optout.crm.mapping import FieldMapping
from optout.crm.protocol import Connector
from optout.crm.ratelimit import Clock, Sleep
from optout.crm.salesforce import SalesforceConnector
from optout.db import tables as t
from optout.errors import ConnectorError, InvalidInput, NotFound

KINDS = ("hubspot", "salesforce")
SECRET_ROLES: Mapping[str, tuple[str, ...]] = {
    "hubspot": ("token", "webhook_secret"),
    # The Salesforce webhook secret is made here (`credentials.new_webhook_secret`): Outbound
    # Messages carry no signature, so their address holds it.
    "salesforce": ("token", "client_secret", "webhook_secret"),
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SECRET_LOOKING = re.compile(r"secret|token|password|passwd|private_key$|api_key", re.IGNORECASE)


@dataclass(frozen=True)
class CrmConnection:
    id: int
    workspace_id: int
    kind: str
    base_url: str
    secrets: Mapping[str, str]  # role -> environment variable NAME
    settings: Mapping[str, Any]
    enabled: bool


def connect(
    db: Connection,
    *,
    workspace_id: int,
    kind: str,
    base_url: str,
    now: datetime,
    secrets: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> CrmConnection:
    """Create the workspace's connection to `kind` with the default mappings, or update it
    (secrets and settings given are merged into the existing ones)."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown CRM {kind!r}; use one of {', '.join(KINDS)}")
    url = _check_url(base_url)
    names = _check_secret_names(kind, secrets or {})
    extra = _check_settings(settings or {})
    c = t.crm_connections
    existing = _row(db, sa.and_(c.c.workspace_id == workspace_id, c.c.kind == kind))
    if existing is not None:
        if names:  # a variable named now replaces a secret stored for the same role
            s = t.crm_secrets
            db.execute(
                s.delete().where(s.c.connection_id == existing.id, s.c.role.in_(list(names)))
            )
        db.execute(
            c.update()
            .where(c.c.id == existing.id)
            .values(
                base_url=url,
                secrets={**existing.secrets, **names},
                settings={**existing.settings, **extra},
                updated_at=now,
            )
        )
        return by_id(db, connection_id=existing.id)
    connection_id = db.execute(
        c.insert()
        .values(
            workspace_id=workspace_id,
            kind=kind,
            base_url=url,
            secrets=names,
            settings=extra,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        .returning(c.c.id)
    ).scalar_one()
    rows = [
        {
            "connection_id": connection_id,
            "crm_object": m.crm_object,
            "crm_field": m.crm_field,
            "our_field": m.our_field,
            "mode": m.mode,
        }
        for m in mapping.defaults(kind)
    ]
    db.execute(t.crm_field_mappings.insert(), rows)
    return by_id(db, connection_id=int(connection_id))


def by_id(db: Connection, *, connection_id: int) -> CrmConnection:
    found = _row(db, t.crm_connections.c.id == connection_id)
    if found is None:
        raise NotFound(f"no CRM connection {connection_id}")
    return found


def for_workspace(db: Connection, *, workspace_id: int) -> list[CrmConnection]:
    c = t.crm_connections
    rows = db.execute(
        sa.select(c).where(c.c.workspace_id == workspace_id).order_by(c.c.id)
    ).mappings()
    return [_connection(r) for r in rows]


def get(db: Connection, *, workspace_id: int, kind: str | None = None) -> CrmConnection:
    """The workspace's connection to `kind`; without a kind, its only connection."""
    found = [
        c for c in for_workspace(db, workspace_id=workspace_id) if kind is None or c.kind == kind
    ]
    if not found:
        what = kind or "a CRM"
        raise NotFound(
            f"this workspace has no connection to {what}; add one with `optout crm connect`"
        )
    if len(found) > 1:
        raise InvalidInput("this workspace has several CRM connections; name one (--crm)")
    return found[0]


def set_mapping(
    db: Connection, *, connection: CrmConnection, field_mapping: FieldMapping, now: datetime
) -> FieldMapping:
    """Map a CRM field to one of ours (replacing what fed that field before)."""
    checked = mapping.check(connection.kind, field_mapping)
    m = t.crm_field_mappings
    db.execute(
        m.delete().where(
            m.c.connection_id == connection.id,
            m.c.crm_object == checked.crm_object,
            m.c.our_field == checked.our_field,
        )
    )
    db.execute(
        m.insert().values(
            connection_id=connection.id,
            crm_object=checked.crm_object,
            crm_field=checked.crm_field,
            our_field=checked.our_field,
            mode=checked.mode,
        )
    )
    c = t.crm_connections
    db.execute(c.update().where(c.c.id == connection.id).values(updated_at=now))
    return checked


def mappings(db: Connection, *, connection_id: int) -> list[FieldMapping]:
    m = t.crm_field_mappings
    rows = db.execute(
        sa.select(m.c.crm_object, m.c.crm_field, m.c.our_field, m.c.mode)
        .where(m.c.connection_id == connection_id)
        .order_by(m.c.crm_object, m.c.id)
    )
    return [FieldMapping(*row) for row in rows]


def secret(
    connection: CrmConnection,
    role: str,
    env: Mapping[str, str],
    stored: Mapping[str, str] | None = None,
) -> str:
    """The secret for `role`: the one stored for the connection, else the value of the
    environment variable the connection names."""
    saved = (stored or {}).get(role, "")
    if saved:
        return saved
    name = connection.secrets.get(role)
    if not name:
        raise ConnectorError(
            f"the {connection.kind} connection has no {role.replace('_', ' ')}: save one on "
            "the CRM page, or name an environment variable with `optout crm connect`"
        )
    value = env.get(name, "")
    if not value:
        raise ConnectorError(f"environment variable {name} ({connection.kind} {role}) is unset")
    return value


def secret_values(
    connection: CrmConnection, env: Mapping[str, str], stored: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Role -> secret, for every role the connection has one for (stored ones win)."""
    values = {role: env.get(name, "") for role, name in connection.secrets.items()}
    values.update({role: value for role, value in (stored or {}).items() if value})
    return values


def connector_for(
    connection: CrmConnection,
    field_mappings: list[FieldMapping],
    env: Mapping[str, str],
    *,
    stored: Mapping[str, str] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    max_retries: int = 6,
    timeouts: CrmTimeouts | None = None,
) -> Connector:
    """The connector of `connection`; `stored` holds its decrypted stored secrets by role.
    `env` also holds the hosts the outbound guard allows (OPTOUT_CRM_ALLOWED_HOSTS), the
    folder key files are read from (OPTOUT_CRM_KEY_FOLDER) and the timeouts of each call
    (OPTOUT_CRM_CONNECT_TIMEOUT, OPTOUT_CRM_READ_TIMEOUT), unless `timeouts` are given."""
    fields = mapping.crm_fields(field_mappings)
    allowed = crm_allowed_hosts_from(env)
    timeouts = timeouts or crm_timeouts_from(env)
    if connection.kind == "hubspot":
        return HubSpotConnector(
            base_url=connection.base_url,
            token=secret(connection, "token", env, stored),
            fields=fields,
            settings=connection.settings,
            clock=clock,
            sleep=sleep,
            allowed_hosts=allowed,
            max_retries=max_retries,
            timeouts=timeouts,
        )
    return SalesforceConnector(
        base_url=connection.base_url,
        fields=fields,
        settings=connection.settings,
        secrets=secret_values(connection, env, stored),
        clock=clock,
        sleep=sleep,
        allowed_hosts=allowed,
        key_folder=crm_key_folder_from(env),
        max_retries=max_retries,
        timeouts=timeouts,
    )


def _row(db: Connection, where: sa.ColumnElement[bool]) -> CrmConnection | None:
    row = db.execute(sa.select(t.crm_connections).where(where)).mappings().first()
    return None if row is None else _connection(row)


def _connection(row: sa.RowMapping) -> CrmConnection:
    return CrmConnection(
        id=row["id"],
        workspace_id=row["workspace_id"],
        kind=row["kind"],
        base_url=row["base_url"],
        secrets=dict(row["secrets"] or {}),
        settings=dict(row["settings"] or {}),
        enabled=bool(row["enabled"]),
    )


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"{url.strip()!r} is not a web address: type one that begins with https:// "
            "and names the server, such as https://api.hubapi.com or "
            "https://acme.my.salesforce.com",
            value=url,
        ).at("base_url", "Address")
    return url.strip().rstrip("/")


def _check_secret_names(kind: str, secrets: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for role, name in secrets.items():
        if role not in SECRET_ROLES[kind]:
            raise InvalidInput(
                f"{kind} takes secrets for {', '.join(SECRET_ROLES[kind])}, not {role!r}"
            )
        if not _ENV_NAME.match(name):
            raise InvalidInput(
                f"{role}: give the NAME of an environment variable (like HUBSPOT_TOKEN), "
                "never the secret itself"
            )
        out[role] = name
    return out


def _check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in settings.items():
        if _SECRET_LOOKING.search(key) and key not in ("private_key_path",):
            raise InvalidInput(
                f"setting {key!r} looks like a secret: keep secrets in environment variables "
                "and give their names (--token-env, --client-secret-env, ...)"
            )
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise InvalidInput(f"setting {key!r} takes text, a number or a boolean")
    return dict(settings)
