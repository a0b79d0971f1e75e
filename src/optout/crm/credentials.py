"""The secrets of a CRM connection kept in the database, encrypted with
OPTOUT_ENCRYPTION_KEYS (`optout.services.access.stored_secrets`), and the connector built with
them. Saving a secret for a role forgets the environment variable the connection named for
it, so the newest choice is the one in use; nothing here ever hands a secret back to a page,
only which roles have one saved."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.config import CrmTimeouts
from optout.crm import connections
from optout.crm.connections import SECRET_ROLES, CrmConnection
from optout.crm.protocol import Connector
from optout.crm.ratelimit import Clock, Sleep
from optout.crypto import SecretBox
from optout.db import tables as t
from optout.errors import ConnectorError, InvalidInput
from optout.services.access import stored_secrets

ROLE_NAMES: Mapping[str, str] = {
    "token": "access token",
    "webhook_secret": "webhook secret",
    "client_secret": "client secret",
}
# Secrets optout makes itself rather than being given: never typed into the connect form.
MADE_HERE: Mapping[str, tuple[str, ...]] = {"hubspot": (), "salesforce": ("webhook_secret",)}
WEBHOOK_KEY = "key"  # the query parameter of a Salesforce webhook address holding the secret


def typed_roles(kind: str) -> tuple[str, ...]:
    """The secrets of `kind` a person types in: those the CRM gives them."""
    return tuple(r for r in SECRET_ROLES[kind] if r not in MADE_HERE[kind])


def save(
    db: Connection,
    *,
    connection: CrmConnection,
    values: Mapping[str, str],
    keys: Sequence[str],
    now: datetime,
) -> list[str]:
    """Store the secrets given (an empty value keeps what is saved), encrypted; the roles
    saved. InvalidInput when OPTOUT_ENCRYPTION_KEYS is missing or bad."""
    given = {role: value.strip() for role, value in values.items() if value.strip()}
    for role in given:
        if role not in SECRET_ROLES[connection.kind]:
            raise InvalidInput(f"{connection.kind} keeps no secret called {role!r}")
    if not given:
        return []
    box = SecretBox(keys)
    for role, value in given.items():
        stored_secrets.put_crm_secret(
            db, box=box, connection_id=connection.id, role=role, value=value, now=now
        )
    c = t.crm_connections
    db.execute(
        c.update()
        .where(c.c.id == connection.id)
        .values(
            secrets={r: n for r, n in connection.secrets.items() if r not in given},
            updated_at=now,
        )
    )
    return sorted(given)


def new_webhook_secret(
    db: Connection, *, connection: CrmConnection, keys: Sequence[str], now: datetime
) -> str:
    """Make (or replace) the secret a Salesforce webhook address carries, store it
    encrypted and return it: the only time it is seen in clear."""
    if "webhook_secret" not in MADE_HERE[connection.kind]:
        raise InvalidInput(
            "HubSpot signs its webhooks with the app's client secret: save that one instead"
        )
    value = secrets.token_urlsafe(32)
    save(db, connection=connection, values={"webhook_secret": value}, keys=keys, now=now)
    return value


def webhook_key_matches(expected: str, given: str) -> bool:
    """Whether the key of a pushed request is the webhook secret (compared in constant
    time); a connection without a secret takes no pushed request at all."""
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def saved_roles(db: Connection, *, connection_id: int) -> set[str]:
    """The roles that have a secret stored (read without decrypting anything)."""
    s = t.crm_secrets
    return set(db.scalars(sa.select(s.c.role).where(s.c.connection_id == connection_id)))


def stored(db: Connection, *, connection: CrmConnection, keys: Sequence[str]) -> dict[str, str]:
    """Role -> decrypted secret stored for the connection; ConnectorError when some are
    stored but OPTOUT_ENCRYPTION_KEYS is not set."""
    if not saved_roles(db, connection_id=connection.id):
        return {}
    if not any(key.strip() for key in keys):
        raise ConnectorError(
            f"the {connection.kind} connection's secrets are stored encrypted: set "
            "OPTOUT_ENCRYPTION_KEYS to the key they were saved with"
        )
    return stored_secrets.crm_secrets(db, box=SecretBox(keys), connection_id=connection.id)


def connector(
    db: Connection,
    *,
    connection: CrmConnection,
    env: Mapping[str, str],
    keys: Sequence[str],
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    max_retries: int = 6,
    timeouts: CrmTimeouts | None = None,
) -> Connector:
    """The connector of `connection` with its mappings, stored secrets and named ones."""
    return connections.connector_for(
        connection,
        connections.mappings(db, connection_id=connection.id),
        env,
        stored=stored(db, connection=connection, keys=keys),
        clock=clock,
        sleep=sleep,
        max_retries=max_retries,
        timeouts=timeouts,
    )
