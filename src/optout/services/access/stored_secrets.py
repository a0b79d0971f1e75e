"""Secrets kept in the database, always encrypted (`optout.crypto.SecretBox`): the
secret values of a CRM connection (by role: token, webhook_secret, client_secret) and
DKIM private keys. Values written in clear before encryption are read transparently
and encrypted by `rotate_all`."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.crypto import SecretBox
from optout.db import tables as t
from optout.errors import InvalidInput, NotFound


def put_crm_secret(
    db: Connection, *, box: SecretBox, connection_id: int, role: str, value: str, now: datetime
) -> None:
    if not value:
        raise InvalidInput(f"the CRM secret {role!r} is empty")
    s = t.crm_secrets
    db.execute(s.delete().where(s.c.connection_id == connection_id, s.c.role == role))
    db.execute(
        s.insert().values(
            connection_id=connection_id, role=role, ciphertext=box.encrypt(value), updated_at=now
        )
    )


def crm_secrets(db: Connection, *, box: SecretBox, connection_id: int) -> dict[str, str]:
    """Role -> secret value, decrypted."""
    s = t.crm_secrets
    rows = db.execute(sa.select(s.c.role, s.c.ciphertext).where(s.c.connection_id == connection_id))
    return {role: box.decrypt(stored) for role, stored in rows}


def put_dkim_key(
    db: Connection, *, box: SecretBox, domain: str, selector: str, pem: bytes, now: datetime
) -> None:
    k = t.dkim_keys
    db.execute(k.delete().where(k.c.domain == domain, k.c.selector == selector))
    db.execute(
        k.insert().values(
            domain=domain,
            selector=selector,
            private_key=box.encrypt(pem.decode("ascii")),
            created_at=now,
        )
    )


def dkim_key(db: Connection, *, box: SecretBox, domain: str, selector: str) -> bytes:
    k = t.dkim_keys
    stored = db.scalar(
        sa.select(k.c.private_key).where(k.c.domain == domain, k.c.selector == selector)
    )
    if stored is None:
        raise NotFound(f"no DKIM key for selector {selector!r} of {domain}")
    return box.decrypt(stored).encode("ascii")


def rotate_all(db: Connection, *, box: SecretBox) -> int:
    """Re-encrypt every stored secret under the newest key; how many were rewritten."""
    s, k = t.crm_secrets, t.dkim_keys
    count = 0
    for connection_id, role, stored in db.execute(
        sa.select(s.c.connection_id, s.c.role, s.c.ciphertext)
    ).all():
        db.execute(
            s.update()
            .where(s.c.connection_id == connection_id, s.c.role == role)
            .values(ciphertext=box.rotate(stored))
        )
        count += 1
    for key_id, stored in db.execute(sa.select(k.c.id, k.c.private_key)).all():
        db.execute(k.update().where(k.c.id == key_id).values(private_key=box.rotate(stored)))
        count += 1
    return count
