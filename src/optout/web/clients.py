"""Who the client of a request is, and whether it came over https, as the settings say.

The client is the peer of the connection; only when that peer is one of the proxies
named in `OPTOUT_TRUSTED_PROXIES` is it read from `X-Forwarded-For` instead (the nearest
address there that is not itself a trusted proxy). uvicorn's own reading of that header
is turned off (`server_config`), so nothing else decides it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import uvicorn
from fastapi import Request

from optout.config import IPNetwork
from optout.web.site import site_of

FORWARDED_FOR = "X-Forwarded-For"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(text: str, proxies: tuple[IPNetwork, ...]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in proxies)


def client_address(peer: str, forwarded_for: list[str], proxies: tuple[IPNetwork, ...]) -> str:
    """The client of a request from `peer` carrying these `X-Forwarded-For` headers.

    Each proxy appends the address it received from, so the header is read from its
    right end: past the trusted proxies, the first address is the one the nearest
    trusted proxy saw. Anything left of it was written by the client and proves nothing.
    """
    if not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if _address(hop) is None:
            return peer  # a malformed header: keep to what the connection says
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


def client_of(request: Request) -> str:
    """The client address of `request`, as `client_address` reads it."""
    peer = request.client.host if request.client else ""
    proxies = site_of(request).settings.trusted_proxies
    return client_address(peer, request.headers.getlist(FORWARDED_FOR), proxies)


def over_https(request: Request) -> bool:
    """Whether the browser reached us over https: directly, or through a TLS proxy that
    `OPTOUT_HTTPS_ONLY` declares. Cookies are marked Secure when it is so."""
    return site_of(request).settings.https_only or request.url.scheme == "https"


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the web app: forwarded headers are left to
    `client_of` (uvicorn would otherwise trust them from 127.0.0.1)."""
    return uvicorn.Config(app, proxy_headers=False, **options)
