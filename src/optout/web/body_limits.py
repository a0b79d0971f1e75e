"""How many bytes a request body may have, checked before an endpoint reads it.

A declared `Content-Length` over the limit is answered 413 at once, unread; a chunked
body is counted as it arrives and refused the moment it passes the limit, so no
endpoint reads more than its limit whatever the client sends. The public endpoints
(the unsubscribe link, the CRM webhooks) have small limits: they need no more.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB
UPLOAD_BYTES = 50 * MIB  # the largest CSV file an import takes
# First matching prefix wins; anything else gets DEFAULT_BYTES.
LIMITS: tuple[tuple[str, int], ...] = (
    ("/u/", 64 * KIB),  # an unsubscribe POST carries a one-line form
    ("/crm/webhooks/", 4 * MIB),  # a CRM's batch of change notifications
    ("/api/v1/imports/", UPLOAD_BYTES + MIB),  # the file and its multipart framing
    ("/imports", UPLOAD_BYTES + MIB),
)
DEFAULT_BYTES = 64 * MIB


def limit_for(path: str) -> int:
    return next((limit for prefix, limit in LIMITS if path.startswith(prefix)), DEFAULT_BYTES)


def describe(size: int) -> str:
    """`65536` as "64 KB", `52428800` as "50 MB"."""
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MB"
    if size >= KIB and size % KIB == 0:
        return f"{size // KIB} KB"
    return f"{size} bytes"


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {describe(limit)}, the limit here")
        self.limit = limit


class BodyLimits:
    """ASGI middleware enforcing `limit_for(path)` on every request body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(str(scope.get("path", "")))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, BodyTooLarge(limit))
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            if started:
                raise
            await _refuse(send, exc)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, error: BodyTooLarge) -> None:
    body = json.dumps({"error": {"code": "too_large", "message": str(error)}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
