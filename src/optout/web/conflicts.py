"""Every web request, page or API, is run again when PostgreSQL rolled its transaction
back for a deadlock or a serialization failure (`optout.db.conflicts`), as long as
nothing of it committed and no answer started: the user gets the answer of a clean run,
not a 500.

The request body is kept for the rerun up to REPLAY_BYTES; a larger one (a file upload)
is read once, and its request is not run again.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optout.db import conflicts
from optout.web.body_limits import MIB

REPLAY_BYTES = MIB


class RetryConflicts:
    """ASGI middleware: a request whose transaction lost to a conflict runs again."""

    def __init__(self, app: ASGIApp, *, tries: int = conflicts.ATTEMPTS) -> None:
        self.app = app
        self.tries = tries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Replay(receive)
        for number in range(1, self.tries + 1):
            started = False

            async def sending(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                await send(message)

            with conflicts.counting_commits() as commits:
                try:
                    await self.app(scope, body.receive_again(), sending)
                    return
                except Exception as exc:
                    if (
                        number == self.tries
                        or started
                        or commits.count
                        or not body.replayable
                        or not conflicts.is_conflict(exc)
                    ):
                        raise
            await asyncio.sleep(conflicts.pause(number))


class _Replay:
    """The messages of a request body as they were received, to be given again."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._kept: list[Message] = []
        self._size = 0
        self.replayable = True

    def receive_again(self) -> Receive:
        given = 0

        async def receive() -> Message:
            nonlocal given
            if given < len(self._kept):
                given += 1
                return self._kept[given - 1]
            message = await self._receive()
            if self.replayable and message["type"] == "http.request":
                self._size += len(message.get("body", b""))
                if self._size > REPLAY_BYTES:
                    self.replayable, self._kept = False, []
                else:
                    self._kept.append(message)
                    given += 1
            return message

        return receive
