"""Settings of the installation kept in its database, so that a worker started on another
machine needs nothing but the database URL.

Three settings every process that sends or reads mail must share:

- **the keys that sign unsubscribe links**: when `OPTOUT_SECRET_KEYS` is unset, the first
  process generates one and stores it here encrypted with the encryption keys
  (`OPTOUT_ENCRYPTION_KEYS` or their key file, `optout.crypto`), never in clear: a worker
  elsewhere needs the database URL and those keys. A process without encryption keys
  keeps its link keys in a key file readable by its own user only (`var/secret_keys`,
  mode 0600) and stores only their fingerprint here, so a process elsewhere without them
  stops with a clear message instead of signing links the web app refuses. An
  installation that kept its keys in `var/secret_keys` has that file's keys taken over
  once it has encryption keys, and keys an earlier version stored here in clear are
  encrypted in place, or moved to the key file, on the next start (`_link_keys`);
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

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.config import Settings, load_or_create_secret_keys, parse_secret_keys
from optout.crypto import SecretBox
from optout.db import tables as t
from optout.errors import InvalidInput

SIGNING_KEYS = "link_signing_keys"  # JSON list, newest first, encrypted (once in clear)
SIGNING_KEYS_FINGERPRINT = "link_signing_keys_fingerprint"  # keys held in the environment
SIGNING_KEYS_IN_FILE = "link_signing_keys_file_fingerprint"  # keys held in a key file
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
        keys = settings.secret_keys or _link_keys(db, settings, stored)
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


# The link keys at rest: encrypted in the database, or in a private key file.

_NEEDS_ENCRYPTION_KEYS = (
    "The unsubscribe link keys are kept encrypted in the database: set "
    "OPTOUT_ENCRYPTION_KEYS here to the web service's encryption keys."
)
_KEPT_IN_A_FILE = (
    "The web service keeps its unsubscribe link keys in its key file (var/secret_keys) "
    "because it has no encryption keys: set OPTOUT_SECRET_KEYS here to the keys of that "
    "file, or give both processes the same OPTOUT_ENCRYPTION_KEYS."
)


def _link_keys(db: Connection, settings: Settings, stored: Mapping[str, str]) -> tuple[str, ...]:
    """The link keys of a process not given OPTOUT_SECRET_KEYS, made on first use. With
    encryption keys they are kept encrypted in the database; without, in the key file."""
    box = _box(settings)
    value = stored.get(SIGNING_KEYS)
    if value is not None and not _in_clear(value):
        if box is None:
            raise MissingDeploymentSetting(_NEEDS_ENCRYPTION_KEYS)
        return _keys_of(box.decrypt(value))
    if value is not None:  # stored in clear by an earlier version: out of the table
        keys = _keys_of(value)
        if box is not None:
            _put(db, SIGNING_KEYS, box.encrypt(value), utcnow())
        else:
            keys = _keep_in_file(settings.secret_keys_path, keys)
            _drop(db, SIGNING_KEYS)
            _put(db, SIGNING_KEYS_IN_FILE, fingerprint(keys), utcnow())
        return keys
    path = settings.secret_keys_path
    in_file = stored.get(SIGNING_KEYS_IN_FILE)
    if in_file is not None and not path.exists():
        raise MissingDeploymentSetting(_KEPT_IN_A_FILE)  # the file is on another machine
    if box is None:
        keys = load_or_create_secret_keys(path)
        if in_file is None:  # two processes starting at once: the first insert wins
            _put(db, SIGNING_KEYS_IN_FILE, fingerprint(keys), utcnow(), replace_existing=False)
            in_file = _read(db)[SIGNING_KEYS_IN_FILE]
        if in_file != fingerprint(keys):
            raise MissingDeploymentSetting(_KEPT_IN_A_FILE)
        return keys
    keys = load_or_create_secret_keys(path) if path.exists() else (secrets.token_urlsafe(32),)
    listed = json.dumps(list(keys))
    # Two processes starting at once: the first insert wins and both read it back.
    _put(db, SIGNING_KEYS, box.encrypt(listed), utcnow(), replace_existing=False)
    _drop(db, SIGNING_KEYS_IN_FILE)
    return _keys_of(box.decrypt(_read(db)[SIGNING_KEYS]))


def _box(settings: Settings) -> SecretBox | None:
    return SecretBox(settings.encryption_keys) if settings.encryption_keys else None


def _in_clear(value: str) -> bool:
    return value.lstrip().startswith("[")  # a JSON list; an encrypted value is a token


def _keys_of(listed: str) -> tuple[str, ...]:
    text = "\n".join(json.loads(listed))
    return parse_secret_keys(text, source="the database's link keys", separator="\n")


def _keep_in_file(path: Path, keys: tuple[str, ...]) -> tuple[str, ...]:
    """Write `keys` first in the key file at `path` (mode 0600, replaced whole), before
    the keys it already held: links signed with any of them stay valid. All of them."""
    held: tuple[str, ...] = ()
    if path.exists():
        held = parse_secret_keys(path.read_text("utf-8"), source=str(path), separator="\n")
    lines = [*keys, *(key for key in held if key not in keys)]
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600
            handle.write(_KEY_FILE_HEADER + "".join(f"{key}\n" for key in lines))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return tuple(lines)


_KEY_FILE_HEADER = (
    "# optout secret keys for unsubscribe links: one a line, newest (signing) first.\n"
    "# Keep old keys below a new one as long as mail signed with them may be clicked.\n"
)


def _drop(db: Connection, name: str) -> None:
    s = t.deployment_settings
    db.execute(s.delete().where(s.c.name == name))


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
