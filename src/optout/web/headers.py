"""Security headers on every response the app sends: pages, fragments, the JSON API,
static files, redirects and errors alike.

A response that already chose one of these headers keeps its own (the public
unsubscribe pages send a stricter policy and no Referer at all); the rest get the
defaults below. Scripts and styles come only from this server (`/static`): no inline
script or style, no eval, so an injected tag cannot run or restyle a page.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The one hash allows an empty style attribute (what htmx leaves on some swapped
# elements) and nothing else: the hash is that of the empty string.
EMPTY_STYLE = "'unsafe-hashes' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self'; style-src 'self' {EMPTY_STYLE}; "
    "img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

# The sequence editor shows each email as it will be sent, in a sandboxed frame (no script
# runs there) whose document inherits the page's policy; email HTML carries its styles
# inline, so that page alone allows inline styles. Scripts stay the server's own.
EMAIL_PREVIEW_POLICY = CONTENT_SECURITY_POLICY.replace(
    f"style-src 'self' {EMPTY_STYLE}", "style-src 'self' 'unsafe-inline'"
)

DEFAULT_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# Over https only (directly, or through a TLS proxy that OPTOUT_HTTPS_ONLY declares):
# browsers keep to https for this host for a year.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


class SecurityHeaders:
    """ASGI middleware adding `DEFAULT_HEADERS` (and HSTS over https) to every response.
    `https_only`: every request came over https, whatever the scheme the proxy forwards."""

    def __init__(self, app: ASGIApp, https_only: bool = False) -> None:
        self.app = app
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = self.https_only or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULT_HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
