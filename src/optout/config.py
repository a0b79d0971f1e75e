"""Settings read from the environment, once, at the edge.

| variable | default | what |
| --- | --- | --- |
| `OPTOUT_DATABASE_URL` | `sqlite:///var/optout.sqlite3` | where the data lives |
| `OPTOUT_SECRET_KEYS` | generated into the database | secrets that sign unsubscribe links |
| `OPTOUT_BASE_URL` | published by `optout serve`, else `http://127.0.0.1:8000` | links' address |
| `OPTOUT_TRANSPORT_URL` | published by `optout serve`, else `outbox:var/outbox` | mail relay |
| `OPTOUT_DKIM_SELECTOR`, `_DOMAIN`, `_KEY_FILE` | unset | DKIM signing (all three or none) |
| `OPTOUT_INBOUND_LOCAL_PART` | `unsubscribe` | inbound address per sending domain (mailto, CFBL) |
| `OPTOUT_ENCRYPTION_KEYS` | unset | Fernet keys that encrypt secrets stored in the database |
| `OPTOUT_TRUSTED_PROXIES` | unset: trust none | proxies whose `X-Forwarded-For` names the client |
| `OPTOUT_HTTPS_ONLY` | off | browsers reach the web app over https only (a TLS proxy in front) |
| `OPTOUT_CRM_ALLOWED_HOSTS` | unset | CRM hosts on a private or local address optout may call |
| `OPTOUT_CRM_KEY_FOLDER` | unset | the only folder Salesforce private key files are read from |

`OPTOUT_ENCRYPTION_KEYS` is a comma-separated list of Fernet keys, newest first
(the first encrypts, all decrypt); make one with
`python -c 'from optout.crypto import new_key; print(new_key())'`. CRM secrets
and DKIM private keys kept in the database are encrypted with it; values stored
in clear before are read as they are and re-encrypted by a rotation.

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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from optout.errors import InvalidInput

DEFAULT_SQLITE_PATH = Path("var") / "optout.sqlite3"
DEFAULT_SECRET_KEYS_PATH = Path("var") / "secret_keys"
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
    # Which of secret_keys, base_url, transport_url the environment set; the others may be
    # taken from the database (optout.deployment).
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


def encryption_keys_from(env: Mapping[str, str]) -> tuple[str, ...]:
    """The Fernet keys of `OPTOUT_ENCRYPTION_KEYS` in `env`, newest first."""
    return tuple(
        key.strip() for key in env.get("OPTOUT_ENCRYPTION_KEYS", "").split(",") if key.strip()
    )


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


def load_or_create_secret_keys(path: Path) -> tuple[str, ...]:
    """The keys kept in `path`; if there is no such file, a new one with a fresh key.

    The file is written completely under a temporary name (mode 0600) and then
    linked into place, so two processes starting at once agree on one key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_keys.")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(f"{_KEYS_FILE_HEADER}{secrets.token_urlsafe(32)}\n")
            with contextlib.suppress(FileExistsError):  # another process was first
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    keys = parse_secret_keys(path.read_text("utf-8"), source=str(path), separator="\n")
    if not keys:
        raise InvalidInput(f"{path}: holds no secret key; delete it to have one generated")
    return keys
