"""CRM secrets and DKIM private keys are encrypted at rest: the raw database never holds
them in clear; rotation keeps them readable; values stored in clear before are read."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.crm import connections
from optout.crypto import SecretBox, new_key
from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services.access import stored_secrets
from tests.factories import World

TOKEN = "pat-na1-0f9e8d7c-secret-hubspot-token"
PEM = (
    b"-----BEGIN PRIVATE KEY-----\n"
    b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-dkim-secret\n"
    b"-----END PRIVATE KEY-----\n"
)


def _raw_dump(db: Connection) -> str:
    """Every value of the two tables, as the database holds them."""
    rows = [*db.execute(sa.select(t.crm_secrets)).all(), *db.execute(sa.select(t.dkim_keys)).all()]
    return repr(rows)


def _connection(world: World, now: datetime) -> int:
    found = connections.connect(
        world.db, workspace_id=world.ws, kind="hubspot", base_url="https://api.hubapi.com", now=now
    )
    return found.id


def test_crm_secret_and_dkim_key_are_not_in_clear_in_the_database(
    world: World, now: datetime
) -> None:
    box = SecretBox([new_key()])
    connection_id = _connection(world, now)
    stored_secrets.put_crm_secret(
        world.db, box=box, connection_id=connection_id, role="token", value=TOKEN, now=now
    )
    stored_secrets.put_dkim_key(
        world.db, box=box, domain="acme.com", selector="s1", pem=PEM, now=now
    )
    raw = _raw_dump(world.db)
    assert "hubspot-token" not in raw
    assert "dkim-secret" not in raw
    assert "PRIVATE KEY" not in raw
    assert stored_secrets.crm_secrets(world.db, box=box, connection_id=connection_id) == {
        "token": TOKEN
    }
    assert stored_secrets.dkim_key(world.db, box=box, domain="acme.com", selector="s1") == PEM
    with pytest.raises(InvalidInput, match="cannot be decrypted"):
        stored_secrets.crm_secrets(
            world.db, box=SecretBox([new_key()]), connection_id=connection_id
        )


def test_rotation_keeps_secrets_readable_and_moves_them_to_the_new_key(
    world: World, now: datetime
) -> None:
    old, new = new_key(), new_key()
    connection_id = _connection(world, now)
    stored_secrets.put_crm_secret(
        world.db,
        box=SecretBox([old]),
        connection_id=connection_id,
        role="token",
        value=TOKEN,
        now=now,
    )
    rotated = SecretBox([new, old])
    assert stored_secrets.crm_secrets(world.db, box=rotated, connection_id=connection_id)
    assert stored_secrets.rotate_all(world.db, box=rotated) == 1
    only_new = SecretBox([new])
    assert stored_secrets.crm_secrets(world.db, box=only_new, connection_id=connection_id) == {
        "token": TOKEN
    }


def test_a_value_stored_in_clear_before_is_read_and_then_encrypted(
    world: World, now: datetime
) -> None:
    box = SecretBox([new_key()])
    connection_id = _connection(world, now)
    world.db.execute(
        t.crm_secrets.insert().values(
            connection_id=connection_id, role="token", ciphertext=TOKEN, updated_at=now
        )
    )
    assert stored_secrets.crm_secrets(world.db, box=box, connection_id=connection_id) == {
        "token": TOKEN
    }
    stored_secrets.rotate_all(world.db, box=box)
    assert "hubspot-token" not in _raw_dump(world.db)
    assert stored_secrets.crm_secrets(world.db, box=box, connection_id=connection_id) == {
        "token": TOKEN
    }


def test_storing_secrets_needs_valid_keys() -> None:
    with pytest.raises(InvalidInput, match="OPTOUT_ENCRYPTION_KEYS"):
        SecretBox([])
    with pytest.raises(InvalidInput, match="32 url-safe base64-encoded bytes"):
        SecretBox(["not-a-fernet-key"])
