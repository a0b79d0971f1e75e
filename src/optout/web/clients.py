"""Who the client of a request is, and whether it came over https, as the settings say.

The client is the peer of the connection. Only when that peer is one of the proxies
named in `OPTOUT_TRUSTED_PROXIES` are its forwarded headers believed: the client is
then the nearest address in `X-Forwarded-For` that is not itself a trusted proxy, and
the scheme is the one its `X-Forwarded-Proto` names. `TrustedProxies` rewrites the
request that way before anything reads it; uvicorn's own reading of those headers
(which trusts 127.0.0.1 out of the box) is turned off by `server_config`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import uvicorn
from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from optout.config import IPNetwork
from optout.web import access_log
from optout.web.site import site_of

SCHEMES = {"http": ("http", "https"), "websocket": ("ws", "wss")}


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


def forwarded_scheme(forwarded_proto: list[str]) -> str | None:
    """What the nearest proxy says the browser used (`http` or `https`), if anything."""
    values = [v.strip().lower() for header in forwarded_proto for v in header.split(",")]
    last = values[-1] if values else ""
    return last if last in ("http", "https") else None


class TrustedProxies:
    """ASGI middleware: the client and scheme of a request from a trusted proxy are the
    ones its forwarded headers name; other requests keep their own."""

    def __init__(self, app: ASGIApp, proxies: tuple[IPNetwork, ...] = ()) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in SCHEMES and peer and _trusted(peer[0], self.proxies):
            headers = Headers(scope=scope)
            client = client_address(peer[0], headers.getlist("x-forwarded-for"), self.proxies)
            scope = dict(scope, client=(client, 0 if client != peer[0] else peer[1]))
            scheme = forwarded_scheme(headers.getlist("x-forwarded-proto"))
            if scheme is not None:
                plain, secure = SCHEMES[scope["type"]]
                scope["scheme"] = secure if scheme == "https" else plain
        await self.app(scope, receive, send)


def client_of(request: Request) -> str:
    """The client address of `request` (after `TrustedProxies`)."""
    return request.client.host if request.client else ""


def over_https(request: Request) -> bool:
    """Whether the browser reached us over https: directly, through a trusted proxy
    that says so, or behind a TLS proxy that `OPTOUT_HTTPS_ONLY` declares. Cookies are
    marked Secure when it is so."""
    return site_of(request).settings.https_only or request.url.scheme == "https"


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the web app: forwarded headers are left to
    `TrustedProxies` (uvicorn would otherwise believe them from 127.0.0.1), and the
    access log has the secret tokens of paths taken out (`optout.web.access_log`)."""
    config = uvicorn.Config(app, proxy_headers=False, **options)
    access_log.install()  # after the Config, which sets up uvicorn's loggers
    return config
