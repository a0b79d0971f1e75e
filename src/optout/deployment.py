"""Settings of the installation kept in its database, so that a worker started on another
machine needs nothing but the database URL.

Three settings every process that sends or reads mail must share:

- **the keys that sign unsubscribe links**: when `OPTOUT_SECRET_KEYS` is unset, the first
  process generates one and stores it here (an installation that kept its keys in
  `var/secret_keys` has that file's keys taken over, so links already sent stay valid);
- **the web app's public address** (`OPTOUT_BASE_URL`), where the links point;
- **the mail relay** (`OPTOUT_TRANSPORT_URL`).

`optout serve` publishes the address and the relay it was started with when they were set
in its environment; a process whose own environment leaves one unset takes the published
value, and its own variable wins where it is set. Two values are never copied into the
database: keys given in `OPTOUT_SECRET_KEYS` (only a fingerprint is, so that a worker
without them stops with a clear message instead of signing links the web app refuses) and
a relay's password (a relay URL with one is published without it, marked as needing it).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.config import Settings, parse_secret_keys
from optout.db import tables as t
from optout.errors import InvalidInput

SIGNING_KEYS = "link_signing_keys"  # JSON list, newest first
SIGNING_KEYS_FINGERPRINT = "link_signing_keys_fingerprint"  # keys held in the environment
BASE_URL = "base_url"
TRANSPORT_URL = "transport_url"
TRANSPORT_NEEDS_PASSWORD = "transport_url_needs_password"  # "1" when published without it


class MissingDeploymentSetting(InvalidInput):
    """This process lacks a setting the installation keeps outside the database."""

    code = "missing_setting"


def completed(settings: Settings, engine: Engine) -> Settings:
    """`settings` with what its environment left unset taken from the database; one error
    naming every setting this process must be given itself."""
    missing = []
    with engine.begin() as db:
        stored = _read(db)
        keys = settings.secret_keys or _stored_keys(db, settings, stored)
        web_signs_with = stored.get(SIGNING_KEYS_FINGERPRINT)
        if not settings.secret_keys and web_signs_with not in (None, fingerprint(keys)):
            missing.append(
                "The web service signs unsubscribe links with keys given in "
                "OPTOUT_SECRET_KEYS, which are not kept in the database: set the same "
                "OPTOUT_SECRET_KEYS here."
            )
    base_url = settings.base_url
    if "base_url" not in settings.from_environment and BASE_URL in stored:
        base_url = stored[BASE_URL]
    transport_url = settings.transport_url
    if "transport_url" not in settings.from_environment and TRANSPORT_URL in stored:
        if stored.get(TRANSPORT_NEEDS_PASSWORD) == "1":
            missing.append(
                f"The mail relay {stored[TRANSPORT_URL]} needs a password, which is not kept "
                "in the database: set OPTOUT_TRANSPORT_URL here as on the web service."
            )
        transport_url = stored[TRANSPORT_URL]
    if missing:
        raise MissingDeploymentSetting(" ".join(missing))
    return replace(settings, secret_keys=keys, base_url=base_url, transport_url=transport_url)


def publish(settings: Settings, engine: Engine, *, now: datetime | None = None) -> None:
    """Record what the web service was started with, for workers started without it."""
    at = now or utcnow()
    with engine.begin() as db:
        if settings.secret_keys and "secret_keys" in settings.from_environment:
            _put(db, SIGNING_KEYS_FINGERPRINT, fingerprint(settings.secret_keys), at)
        else:  # the web service signs with the stored keys: so do the workers
            s = t.deployment_settings
            db.execute(s.delete().where(s.c.name == SIGNING_KEYS_FINGERPRINT))
        if "base_url" in settings.from_environment:
            _put(db, BASE_URL, settings.base_url, at)
        if "transport_url" in settings.from_environment:
            published, has_password = settings.transport_url, False
            if "://" in published and (url := sa.make_url(published)).password is not None:
                # Published with the password shown as ***: the worker must be given it.
                published, has_password = url.render_as_string(hide_password=True), True
            _put(db, TRANSPORT_URL, published, at)
            _put(db, TRANSPORT_NEEDS_PASSWORD, "1" if has_password else "0", at)


def fingerprint(keys: tuple[str, ...]) -> str:
    """A short digest of the signing key that tells two key sets apart and reveals nothing."""
    return hashlib.sha256(f"optout-link-keys:{keys[0]}".encode()).hexdigest()[:16]


def _stored_keys(db: Connection, settings: Settings, stored: Mapping[str, str]) -> tuple[str, ...]:
    if SIGNING_KEYS not in stored:
        kept = settings.secret_keys_path.exists()
        keys = settings.signing_keys() if kept else (secrets.token_urlsafe(32),)
        # Two processes starting at once: the first insert wins and both read it back.
        _put(db, SIGNING_KEYS, json.dumps(list(keys)), utcnow(), replace_existing=False)
        stored = _read(db)
    listed = "\n".join(json.loads(stored[SIGNING_KEYS]))
    return parse_secret_keys(listed, source="the database's link keys", separator="\n")


def _read(db: Connection) -> dict[str, str]:
    s = t.deployment_settings
    return {row.name: row.value for row in db.execute(sa.select(s.c.name, s.c.value))}


def _put(
    db: Connection, name: str, value: str, at: datetime, *, replace_existing: bool = True
) -> None:
    s = t.deployment_settings
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(s).values(name=name, value=value, updated_at=at)
    if replace_existing:
        statement = insert.on_conflict_do_update(
            index_elements=[s.c.name], set_={"value": value, "updated_at": at}
        )
    else:
        statement = insert.on_conflict_do_nothing(index_elements=[s.c.name])
    db.execute(statement)
