"""Settings read from the environment, once, at the edge.

| variable | default | what |
| --- | --- | --- |
| `OPTOUT_DATABASE_URL` | `sqlite:///var/optout.sqlite3` | where the data lives |
| `OPTOUT_SECRET_KEYS` | generated into the database | secrets that sign unsubscribe links |
| `OPTOUT_BASE_URL` | where `optout serve` listens, published to the others | links' address |
| `OPTOUT_TRANSPORT_URL` | published by `optout serve`, else `outbox:var/outbox` | mail relay |
| `OPTOUT_DKIM_SELECTOR`, `_DOMAIN`, `_KEY_FILE` | unset | DKIM signing (all three or none) |
| `OPTOUT_INBOUND_LOCAL_PART` | `unsubscribe` | inbound address per sending domain (mailto, CFBL) |
| `OPTOUT_ENCRYPTION_KEYS` | the key file's | Fernet keys encrypting secrets kept in the database |
| `OPTOUT_ENCRYPTION_KEY_FILE` | beside the SQLite file | key file made on first start (0600) |
| `OPTOUT_TRUSTED_PROXIES` | unset: trust none | proxies whose `X-Forwarded-For` names the client |
| `OPTOUT_HTTPS_ONLY` | off | browsers reach the web app over https only (a TLS proxy in front) |
| `OPTOUT_CRM_ALLOWED_HOSTS` | unset | CRM hosts on a private or local address optout may call |
| `OPTOUT_CRM_KEY_FOLDER` | unset | the only folder Salesforce private key files are read from |
| `OPTOUT_CRM_CONNECT_TIMEOUT`, `_READ_TIMEOUT` | 5, 20 | seconds to connect to a CRM, to answer |

`OPTOUT_ENCRYPTION_KEYS` is a comma-separated list of Fernet keys, newest first
(the first encrypts, all decrypt); make one with
`python -c 'from optout.crypto import new_key; print(new_key())'`. CRM secrets
and DKIM private keys kept in the database are encrypted with it; values stored
in clear before are read as they are and re-encrypted by a rotation. When it is
unset, the first start of `optout serve` makes a key file readable by its own user
only (mode 0600; one key a line, newest first), beside the SQLite database or where
`OPTOUT_ENCRYPTION_KEY_FILE` says, and every process reads the keys from there: the
file must be backed up with the database, as the secrets cannot be read without it.

When `OPTOUT_BASE_URL` is unset, `optout serve` takes the address it listens on
(`--host`, `--port`) as the public address and publishes it for the worker.

`OPTOUT_TRUSTED_PROXIES` is a comma-separated list of IP addresses or networks
(`127.0.0.1, 10.0.0.0/8`) of the reverse proxies in front of the web app. Only a
request whose peer is one of them has its client read from `X-Forwarded-For` (the
nearest address in that header that is not itself a trusted proxy) and its scheme
from `X-Forwarded-Proto`; any other request's client is its peer and its scheme the
connection's, whatever headers it sends. The client address is what the limit on
failed sign-ins per client counts, so trusting a proxy that does not overwrite the
header would let anyone pick their own address.

`OPTOUT_HTTPS_ONLY=1` says browsers reach the web app only over https, through a
proxy that ends TLS and forwards plain http: the session cookies are then marked
Secure and every answer sends `Strict-Transport-Security`, as they are when the app
itself is reached over https.

`OPTOUT_CRM_ALLOWED_HOSTS` is a comma-separated list of host names or addresses
(`crm.internal, 10.1.2.3`). Every request to a CRM is refused when its host resolves
to a loopback, link-local, private, multicast or reserved address, unless the host is
named here exactly as the connection's address spells it.

`OPTOUT_CRM_KEY_FOLDER` is the folder holding the private keys of Salesforce JWT
sign-in; a connection's `private_key_path` is a file name in it (or a path that lies
in it once symbolic links are followed). Unset, no key file is read.

`OPTOUT_SECRET_KEYS` is a comma-separated list, newest first: the first key
signs, all keys verify, so a rotation puts a new key in front and keeps the old
ones while mail signed with them may still be clicked. When it is unset, the
first use generates a key and keeps it in the database (`optout.deployment`), so
that `make run` works out of the box and a worker on another machine needs only
the database URL; keys an older installation kept in `var/secret_keys` are taken
over from that file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from optout.errors import InvalidInput

DEFAULT_SQLITE_PATH = Path("var") / "optout.sqlite3"
DEFAULT_SECRET_KEYS_PATH = Path("var") / "secret_keys"
ENCRYPTION_KEYS_FILE_NAME = "encryption_keys"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TRANSPORT_URL = "outbox:var/outbox"
DEFAULT_INBOUND_LOCAL_PART = "unsubscribe"
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
MIN_SECRET_KEY_LENGTH = 16

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_KEYS_FILE_HEADER = (
    "# optout secret keys for unsubscribe links: one a line, newest (signing) first.\n"
    "# Keep old keys below a new one as long as mail signed with them may be clicked.\n"
)
_ENCRYPTION_FILE_HEADER = (
    "# optout encryption keys for the secrets kept in the database (CRM tokens, DKIM\n"
    "# keys): one a line, newest first. Back this file up with the database: without\n"
    "# it the secrets saved there cannot be read.\n"
)
CRM_CONNECT_TIMEOUT = 5.0  # seconds a CRM has to take a connection
CRM_READ_TIMEOUT = 20.0  # seconds a CRM has to answer a request


@dataclass(frozen=True)
class CrmTimeouts:
    """How long a CRM call may take, and whether a call that timed out is tried again
    (a sync tries once more; a connection test, where a person waits, does not)."""

    connect: float = CRM_CONNECT_TIMEOUT
    read: float = CRM_READ_TIMEOUT
    retries: int = 1


@dataclass(frozen=True)
class Settings:
    database_url: str
    # Secrets for unsubscribe tokens, newest first; empty: read or create `secret_keys_path`.
    secret_keys: tuple[str, ...] = ()
    secret_keys_path: Path = DEFAULT_SECRET_KEYS_PATH
    base_url: str = DEFAULT_BASE_URL
    transport_url: str = DEFAULT_TRANSPORT_URL
    # (selector, domain, key file) or None: DKIM signing of outgoing mail.
    dkim: tuple[str, str, Path] | None = None
    # Fernet keys, newest first, for secrets stored in the database (optout.crypto).
    encryption_keys: tuple[str, ...] = ()
    # Where the keys are kept when the environment gives none (made on first start); None
    # when they come from OPTOUT_ENCRYPTION_KEYS.
    encryption_key_file: Path | None = None
    # The local part of our address at each sending domain that the inbound listener
    # receives: the List-Unsubscribe mailto (R3) and the CFBL-Address for complaint
    # reports (R36) are `<local part>@<sending domain>`, aligned with the From domain.
    inbound_local_part: str = DEFAULT_INBOUND_LOCAL_PART
    # Reverse proxies whose X-Forwarded-For header names the client (none by default).
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Browsers reach the web app over https only (a TLS proxy in front): Secure cookies, HSTS.
    https_only: bool = False
    # The web service runs background jobs (bulk unenroll, imports) in a thread of its own.
    web_runs_jobs: bool = True
    # Which of secret_keys, base_url, transport_url the environment set (or, for base_url,
    # the address `optout serve` listens on); the others may be taken from the database
    # (optout.deployment).
    from_environment: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> Settings:
        url = os.environ.get("OPTOUT_DATABASE_URL", "").strip()
        if not url:
            url = f"sqlite:///{DEFAULT_SQLITE_PATH}"
        keys = parse_secret_keys(
            os.environ.get("OPTOUT_SECRET_KEYS", ""), source="OPTOUT_SECRET_KEYS", separator=","
        )
        base_url = os.environ.get("OPTOUT_BASE_URL", "").strip()
        transport = os.environ.get("OPTOUT_TRANSPORT_URL", "").strip()
        given = {"secret_keys": keys, "base_url": base_url, "transport_url": transport}
        return cls(
            database_url=url,
            secret_keys=keys,
            base_url=check_base_url(base_url or DEFAULT_BASE_URL),
            transport_url=transport or DEFAULT_TRANSPORT_URL,
            dkim=_dkim_from_env(),
            encryption_keys=encryption_keys_from(os.environ),
            encryption_key_file=(
                None if _env_encryption_keys(os.environ) else encryption_key_file_from(os.environ)
            ),
            inbound_local_part=check_local_part(
                os.environ.get("OPTOUT_INBOUND_LOCAL_PART", "").strip()
                or DEFAULT_INBOUND_LOCAL_PART
            ),
            trusted_proxies=parse_trusted_proxies(os.environ.get("OPTOUT_TRUSTED_PROXIES", "")),
            https_only=_flag(os.environ.get("OPTOUT_HTTPS_ONLY", ""), "OPTOUT_HTTPS_ONLY"),
            web_runs_jobs=os.environ.get("OPTOUT_WEB_RUNS_JOBS", "1").strip().lower()
            not in ("0", "false", "no", "off"),
            from_environment=frozenset(name for name, value in given.items() if value),
        )

    def signing_keys(self) -> tuple[str, ...]:
        """The unsubscribe-token secrets, newest first (generated and kept on first use)."""
        if self.secret_keys:
            return self.secret_keys
        return load_or_create_secret_keys(self.secret_keys_path)

    def unsubscribe_url(self, token: str) -> str:
        """The public link of the unsubscribe page for a token (R3)."""
        return f"{self.base_url.rstrip('/')}/u/{token}"

    def with_encryption_key_file(self) -> Settings:
        """These settings with encryption keys: those given, else the key file's, made now
        (mode 0600) when there is none yet: the first start of the service."""
        if self.encryption_keys or self.encryption_key_file is None:
            return self
        path = self.encryption_key_file.resolve()
        return replace(self, encryption_keys=load_or_create_encryption_keys(path),
                       encryption_key_file=path)  # fmt: skip

    def served_at(self, host: str, port: int) -> Settings:
        """These settings for a service listening on `host`:`port`: without
        OPTOUT_BASE_URL, links point where the service actually listens."""
        if "base_url" in self.from_environment:
            return self
        return replace(
            self,
            base_url=listening_url(host, port),
            from_environment=self.from_environment | {"base_url"},
        )


def listening_url(host: str, port: int) -> str:
    """The http address of a service listening on `host`:`port`; a service listening on
    every interface is reached on this machine at 127.0.0.1."""
    name = host.strip().strip("[]") or "127.0.0.1"
    if name in ("0.0.0.0", "::"):
        name = "127.0.0.1"
    if ":" in name:
        name = f"[{name}]"
    return f"http://{name}:{port}"


def is_loopback_url(url: str) -> bool:
    """Whether `url` names this machine only (localhost, 127.0.0.0/8, ::1): a link to it
    in an email would not reach the recipient."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_encryption_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(
        key.strip() for key in env.get("OPTOUT_ENCRYPTION_KEYS", "").split(",") if key.strip()
    )


def encryption_keys_from(env: Mapping[str, str]) -> tuple[str, ...]:
    """The Fernet keys, newest first: those of `OPTOUT_ENCRYPTION_KEYS` in `env`, else
    those of the key file the service made on its first start (none when there is none)."""
    given = _env_encryption_keys(env)
    if given:
        return given
    path = encryption_key_file_from(env)
    return read_key_file(path) if path.is_file() else ()


def encryption_key_file_from(env: Mapping[str, str]) -> Path:
    """Where the encryption keys are kept without OPTOUT_ENCRYPTION_KEYS: the path of
    `OPTOUT_ENCRYPTION_KEY_FILE`, else beside the SQLite database, else in `var/`."""
    named = env.get("OPTOUT_ENCRYPTION_KEY_FILE", "").strip()
    if named:
        return Path(named)
    url = env.get("OPTOUT_DATABASE_URL", "").strip() or f"sqlite:///{DEFAULT_SQLITE_PATH}"
    prefix = "sqlite:///"
    if url.startswith(prefix) and len(url) > len(prefix):
        database = url[len(prefix) :].split("?", 1)[0]
        if database and database != ":memory:":
            return Path(database).parent / ENCRYPTION_KEYS_FILE_NAME
    return Path("var") / ENCRYPTION_KEYS_FILE_NAME


def crm_timeouts_from(env: Mapping[str, str]) -> CrmTimeouts:
    """The CRM timeouts of `OPTOUT_CRM_CONNECT_TIMEOUT` and `OPTOUT_CRM_READ_TIMEOUT`."""
    return CrmTimeouts(
        connect=_seconds(env, "OPTOUT_CRM_CONNECT_TIMEOUT", CRM_CONNECT_TIMEOUT),
        read=_seconds(env, "OPTOUT_CRM_READ_TIMEOUT", CRM_READ_TIMEOUT),
    )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 600:
        raise InvalidInput(f"{name}: {text!r} is not a number of seconds between 0 and 600")
    return value


def parse_trusted_proxies(text: str) -> tuple[IPNetwork, ...]:
    """The networks of `OPTOUT_TRUSTED_PROXIES`: comma-separated addresses or networks."""
    networks = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise InvalidInput(
                f"OPTOUT_TRUSTED_PROXIES: {part.strip()!r} is not an IP address or network "
                "(give addresses like 127.0.0.1 or networks like 10.0.0.0/8, comma-separated)"
            ) from None
    return tuple(networks)


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise InvalidInput(
        f"{name}: {text.strip()!r} is neither on (1, true, yes) nor off (0, false, no)"
    )


def crm_allowed_hosts_from(env: Mapping[str, str]) -> frozenset[str]:
    """The hosts of `OPTOUT_CRM_ALLOWED_HOSTS` in `env`: lower case, IPv6 without brackets."""
    names = env.get("OPTOUT_CRM_ALLOWED_HOSTS", "").split(",")
    return frozenset(n.strip().strip("[]").lower() for n in names if n.strip())


def crm_key_folder_from(env: Mapping[str, str]) -> Path | None:
    """The folder of `OPTOUT_CRM_KEY_FOLDER` in `env`, or None when it is unset."""
    folder = env.get("OPTOUT_CRM_KEY_FOLDER", "").strip()
    return Path(folder) if folder else None


def _dkim_from_env() -> tuple[str, str, Path] | None:
    names = ("OPTOUT_DKIM_SELECTOR", "OPTOUT_DKIM_DOMAIN", "OPTOUT_DKIM_KEY_FILE")
    values = [os.environ.get(name, "").strip() for name in names]
    if not any(values):
        return None
    if not all(values):
        missing = [name for name, value in zip(names, values, strict=True) if not value]
        raise InvalidInput(f"DKIM needs all of {', '.join(names)}; missing {', '.join(missing)}")
    return values[0], values[1], Path(values[2])


def check_local_part(local: str) -> str:
    """A dot-atom local part (RFC 5322) of at most 64 characters, without a domain."""
    if len(local) > 64 or not _LOCAL_PART.match(local):
        raise InvalidInput(
            f"OPTOUT_INBOUND_LOCAL_PART: {local!r} is not the local part of an address "
            "(the part before @, e.g. unsubscribe or fbl)"
        )
    return local


def check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"OPTOUT_BASE_URL: {url!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise InvalidInput(f"OPTOUT_BASE_URL: {url!r} must have no query or fragment")
    return url.rstrip("/")


def parse_secret_keys(text: str, *, source: str, separator: str) -> tuple[str, ...]:
    """Keys from `text`, newest first; `#` comment lines and blanks are skipped."""
    lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
    keys = tuple(key.strip() for line in lines for key in line.split(separator) if key.strip())
    for position, key in enumerate(keys, start=1):
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise InvalidInput(
                f"{source}: key {position} is {len(key)} characters long; "
                f"use at least {MIN_SECRET_KEY_LENGTH} random characters"
            )
    return keys


def _create_key_file(path: Path, text: str) -> None:
    """Write `text` to `path` unless it exists: completely, under a temporary name (mode
    0600, readable by this user only), then linked into place, so two processes starting
    at once agree on one key."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        with contextlib.suppress(FileExistsError):  # another process was first
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def read_key_file(path: Path) -> tuple[str, ...]:
    """The keys of a key file: one a line, `#` comment lines and blanks skipped."""
    lines = path.read_text("utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def load_or_create_encryption_keys(path: Path) -> tuple[str, ...]:
    """The encryption keys kept in `path`; if there is no such file, a new one (0600)
    with a fresh key."""
    from optout.crypto import new_key  # the cryptography package: only when needed

    _create_key_file(path, f"{_ENCRYPTION_FILE_HEADER}{new_key()}\n")
    keys = read_key_file(path)
    if not keys:
        raise InvalidInput(f"{path}: holds no encryption key; set OPTOUT_ENCRYPTION_KEYS")
    return keys


def load_or_create_secret_keys(path: Path) -> tuple[str, ...]:
    """The keys kept in `path`; if there is no such file, a new one with a fresh key
    (mode 0600)."""
    _create_key_file(path, f"{_KEYS_FILE_HEADER}{secrets.token_urlsafe(32)}\n")
    keys = parse_secret_keys(path.read_text("utf-8"), source=str(path), separator="\n")
    if not keys:
        raise InvalidInput(f"{path}: holds no secret key; delete it to have one generated")
    return keys
