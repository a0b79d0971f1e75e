"""A sending transport's URL read and checked, with no connection made:
`smtp://user:pass@host:587?security=starttls`, `smtps://host:465`, `outbox:///abs/folder`
or `outbox:relative/folder`. Errors never repeat the URL (it may hold a password).

The send worker builds its transports from what this reads (`sending.transports`); a
mailbox's own server address is checked with it when the mailbox is saved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from optout.errors import InvalidInput

Security = Literal["none", "starttls", "tls"]
SECURITIES: dict[str, Security] = {"none": "none", "starttls": "starttls", "tls": "tls"}
DEFAULT_PORTS: dict[Security, int] = {"none": 25, "starttls": 587, "tls": 465}
SMTP_OPTIONS = ("security", "timeout", "retries", "backoff", "local_hostname")


@dataclass(frozen=True)
class SmtpUrl:
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None
    timeout: float
    retries: int
    backoff: float
    local_hostname: str | None


@dataclass(frozen=True)
class OutboxUrl:
    folder: Path


def read(url: str) -> SmtpUrl | OutboxUrl:
    """The transport `url` names, or InvalidInput saying what is wrong with it."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "outbox":
        if parts.netloc or parts.query or parts.fragment or not parts.path:
            raise InvalidInput(
                "outbox URL must be outbox:///absolute/folder or outbox:relative/folder"
            )
        return OutboxUrl(Path(unquote(parts.path)))
    if scheme not in ("smtp", "smtps"):
        raise InvalidInput(
            f"unknown transport URL scheme {scheme!r}: use smtp://, smtps:// or outbox:"
        )
    options = _query(parts.query)
    security = SECURITIES.get(options.pop("security", "tls" if scheme == "smtps" else "starttls"))
    if security is None or (scheme == "smtps" and security != "tls"):
        raise InvalidInput(f"{scheme} URL: security must be one of none, starttls, tls")
    try:
        port = parts.port
        timeout = float(options.pop("timeout", "30"))
        retries = int(options.pop("retries", "3"))
        backoff = float(options.pop("backoff", "1"))
    except ValueError as exc:
        raise InvalidInput(f"{scheme} URL: {exc}") from exc
    check_smtp_numbers(retries=retries, backoff=backoff, timeout=timeout)
    if not parts.hostname or parts.path not in ("", "/"):
        raise InvalidInput(f"{scheme} URL must be {scheme}://[user:password@]host[:port]")
    return SmtpUrl(
        parts.hostname,
        port or DEFAULT_PORTS[security],
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        local_hostname=options.pop("local_hostname", None),
    )


def check_smtp_numbers(*, retries: int, backoff: float, timeout: float) -> None:
    if retries < 0 or backoff < 0 or timeout <= 0:
        raise InvalidInput("SMTP retries and backoff must be >= 0, timeout > 0")


def _query(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in SMTP_OPTIONS or name in options:
            raise InvalidInput(
                f"SMTP URL option {name!r} is unknown or repeated "
                f"(known: {', '.join(SMTP_OPTIONS)})"
            )
        options[name] = value
    return options
