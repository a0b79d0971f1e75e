"""The one door every request to a CRM goes through (DESIGN: outbound HTTP).

A connection's address is typed by an admin, and Salesforce names further addresses in its
answers; each of them could point optout, with the CRM's token, at the machine it runs on
or at the private network around it. So every request is sent through `GuardedTransport`:
it resolves the host name itself, refuses the request when any address it resolves to is
not a public one (loopback, link-local, private, shared, multicast, reserved, unspecified,
in IPv4, IPv6 or IPv4 inside IPv6), and then connects to the address it checked, so a name
cannot resolve to something else a moment later. Redirects are never followed. Hosts named
in OPTOUT_CRM_ALLOWED_HOSTS are sent to as they are: a CRM on the operator's own network.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import httpx

from optout.errors import ConnectorError, InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], list[IPAddress]]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOWED_HOSTS_SETTING = "OPTOUT_CRM_ALLOWED_HOSTS"


class OutboundRefused(ConnectorError):
    """A request to a CRM aimed at an address optout does not send to."""


class InvalidAddress(OutboundRefused):
    """An address that is not http(s) or has no host."""


def forbidden(ip: IPAddress) -> bool:
    """Whether `ip` is anything but a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64:
            inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(v4 is not None and forbidden(v4) for v4 in inner):
            return True
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` stands for, as the system resolver reads it (so integer, octal
    and hexadecimal spellings of an IPv4 address come out as the address they mean)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConnectorError(f"the name {host} was not found: check the address") from exc
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found)
    )


def allowed_hosts(names: Iterable[str]) -> frozenset[str]:
    """Host names as the guard compares them: lower case, IPv6 without brackets."""
    return frozenset(n.strip().strip("[]").lower() for n in names if n.strip())


def refusal(name: str, host: str) -> OutboundRefused:
    return OutboundRefused(
        f"{name}: optout does not send requests to {host}, which is a local or private "
        f"address. To reach a CRM on your own network, name its host in "
        f"{ALLOWED_HOSTS_SETTING}."
    )


def check_host(
    host: str, port: int, *, name: str, allowed: frozenset[str], lookup: Resolve = resolve
) -> IPAddress | None:
    """The public address to connect to for `host`; None when the host is allowed by
    name (connect as usual); OutboundRefused for any other."""
    plain = host.strip("[]").lower()
    if plain in allowed:
        return None
    try:
        addresses = lookup(plain, port)
    except ConnectorError as exc:
        raise ConnectorError(f"{name}: {exc.message}") from exc
    if not addresses or any(forbidden(ip) for ip in addresses):
        raise refusal(name, host)
    return addresses[0]


def literal_addresses(host: str, _port: int) -> list[IPAddress]:
    """The address a host spells without asking DNS (any spelling of an IPv4 address, an
    IPv6 address, `localhost`); nothing for any other name."""
    if host == "localhost" or host.endswith(".localhost"):
        return [ipaddress.IPv4Address("127.0.0.1")]
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        return [ipaddress.IPv4Address(socket.inet_aton(host))]
    except OSError:
        return []


def check_address_given(url: str, *, name: str, allowed: frozenset[str], field: str = "") -> None:
    """InvalidInput, when a form is saved, for an address that plainly names a local or
    private host; names are resolved and checked when a request is sent. `field`: the
    input the address was typed in, which the refusal names."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"{name} address {url.strip()!r} is not a web address: type one that begins "
            "with https:// and names the server",
            field=field,
            value=url,
        )
    host = parts.hostname.lower()
    if host in allowed:
        return
    if any(forbidden(ip) for ip in literal_addresses(host, 0)):
        raise InvalidInput(refusal(name, host).message, field=field, value=url)


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that checks, then pins, the address of every request."""

    def __init__(
        self,
        *,
        name: str,
        allowed: frozenset[str],
        verify: ssl.SSLContext,
        lookup: Resolve = resolve,
    ) -> None:
        self._name = name
        self._allowed = allowed
        self._lookup = lookup
        self._inner = httpx.HTTPTransport(verify=verify)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidAddress(f"{self._name}: {url} is not an http(s) address with a host")
        port = url.port or (443 if url.scheme == "https" else 80)
        pinned = check_host(
            url.host, port, name=self._name, allowed=self._allowed, lookup=self._lookup
        )
        if pinned is None:
            return self._inner.handle_request(request)
        # Connect to the address just checked; the Host header (set when the request was
        # made) and the name TLS verifies stay the CRM's.
        direct = httpx.Request(
            request.method,
            url.copy_with(host=str(pinned)),
            headers=request.headers,
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": url.host},
        )
        return self._inner.handle_request(direct)

    def close(self) -> None:
        self._inner.close()
