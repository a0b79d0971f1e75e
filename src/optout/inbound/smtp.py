"""The inbound SMTP listener (aiosmtpd): 250 only after the message's transaction
committed, 451 when something failed on our side (the sender retries; the message
dedup makes a retry after a lost 250 harmless), 554 for input that is no message, 552
over the size limit (aiosmtpd answers that itself).

One transaction at a time: a message that arrives while one runs waits, and the
messages that waited go together in the next (`Deliveries`), as many as about half a
second of write lock allows. A lone message has its own, at once; a busy listener
processes many a transaction instead of queueing one transaction per connection.

It binds an explicit address and port (127.0.0.1 by default): aiosmtpd's
default, `::1:8025`, fails its start-up self-check where IPv6 is missing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.errors import InvalidInput
from optout.inbound.parse import starts_with_header
from optout.inbound.process import (
    BATCH,
    DEFAULT_OPTIONS,
    InboundOptions,
    InboundResult,
    Incoming,
    process_messages,
)
from optout.services.in_parts import next_part_size

log = logging.getLogger("optout.inbound.smtp")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_RECIPIENTS = 50
_SAFE_ADDRESS = re.compile(r"^[!-;=?-~]{1,320}$")  # printable, no < > or spaces


class InboundHandler:
    """aiosmtpd handler: accepts every recipient (up to MAX_RECIPIENTS), processes DATA."""

    def __init__(
        self,
        engine: Engine,
        *,
        workspace_id: int | None = None,
        options: InboundOptions = DEFAULT_OPTIONS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.workspace_id = workspace_id
        self.options = options
        self.clock = clock
        self.deliveries = Deliveries(self.deliver)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        # Trace headers only on what is a message already: garbage stays garbage (554).
        message = _trace_headers(envelope) + content if starts_with_header(content) else content
        try:
            result = await self.deliveries.submit(message)
        except InvalidInput as exc:
            return f"554 5.6.0 {_one_line(exc.message)}"
        except Exception:
            log.exception("could not process an inbound message; asking the sender to retry")
            return "451 4.3.0 Could not store the message; try again later"
        return f"250 2.0.0 Accepted: {result.kind}, {result.outcome}"

    def deliver(self, messages: list[bytes]) -> list[InboundResult | InvalidInput]:
        """Process messages in one transaction; returns after the commit (or the rollback,
        when none of them was a message and nothing was stored)."""
        with self.engine.connect() as db, db.begin() as transaction:
            results = process_messages(
                db,
                messages=[Incoming(message, "smtp") for message in messages],
                now=self.clock(),
                workspace_id=self.workspace_id,
                options=self.options,
            )
            if all(isinstance(result, InvalidInput) for result in results):
                transaction.rollback()
            return results


class Deliveries:
    """The messages waiting for a transaction, processed together, one transaction at a
    time. A transaction of several that fails is redone one message at a time, so one
    message's fault answers only that message with 451."""

    def __init__(
        self, deliver: Callable[[list[bytes]], list[InboundResult | InvalidInput]]
    ) -> None:
        self.deliver = deliver
        self.size = 1  # messages in the next transaction, sized by how long the last held
        self._waiting: list[tuple[bytes, asyncio.Future[InboundResult]]] = []
        self._turn = asyncio.Lock()

    async def submit(self, message: bytes) -> InboundResult:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[InboundResult] = loop.create_future()
        self._waiting.append((message, answer))
        while not answer.done():
            async with self._turn:
                if not answer.done():
                    # Shielded: a sender that hangs up does not leave the others unanswered.
                    await asyncio.shield(self._next(loop))
        return answer.result()

    async def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting[: self.size], self._waiting[self.size :]
        if not batch:
            return
        began = time.monotonic()
        try:
            results = await loop.run_in_executor(None, self.deliver, [m for m, _ in batch])
            for (_, answer), result in zip(batch, results, strict=True):
                _settle(answer, result)
        except Exception:
            if len(batch) > 1:
                log.warning("%s messages together failed; each on its own", len(batch))
            for message, answer in batch:
                if answer.done():
                    continue
                try:
                    (result,) = await loop.run_in_executor(None, self.deliver, [message])
                    _settle(answer, result)
                except Exception as exc:
                    answer.set_exception(exc)
        self.size = next_part_size(len(batch), time.monotonic() - began, most=BATCH, least=1)


def _settle(answer: asyncio.Future[InboundResult], result: InboundResult | InvalidInput) -> None:
    if isinstance(result, InvalidInput):
        answer.set_exception(result)
    else:
        answer.set_result(result)


def _trace_headers(envelope: Envelope) -> bytes:
    """Return-Path and Delivered-To, as a delivering MTA adds them: the envelope addresses
    carry VERP tokens that the headers may not."""
    lines = []
    sender = str(envelope.mail_from or "")
    if sender == "" or _SAFE_ADDRESS.match(sender):
        lines.append(f"Return-Path: <{sender}>\r\n")
    for recipient in envelope.rcpt_tos[:MAX_RECIPIENTS]:
        if _SAFE_ADDRESS.match(recipient):
            lines.append(f"Delivered-To: {recipient}\r\n")
    return "".join(lines).encode("ascii", "replace")


def _one_line(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text)[:200]


class InboundSmtpServer:
    """The listener, started and stopped around a block (`with InboundSmtpServer(...)`)."""

    def __init__(
        self,
        engine: Engine,
        *,
        port: int,
        host: str = DEFAULT_HOST,
        max_bytes: int = DEFAULT_MAX_BYTES,
        workspace_id: int | None = None,
        options: InboundOptions = DEFAULT_OPTIONS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not host or not 0 < port < 65536:
            raise InvalidInput(f"listen on an explicit address and port, not {host!r}:{port}")
        if max_bytes < 1024:
            raise InvalidInput("the message size limit must be at least 1 KiB")
        self.handler = InboundHandler(
            engine, workspace_id=workspace_id, options=options, clock=clock
        )
        self.host, self.port = host, port
        self._controller = Controller(
            self.handler,
            hostname=host,
            port=port,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            ident="optout inbound",
        )

    def start(self) -> None:
        try:
            self._controller.start()
        except OSError as exc:
            raise InvalidInput(f"cannot listen on {self.host}:{self.port}: {exc}") from exc

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def parse_listen(value: str) -> tuple[str, int]:
    """`127.0.0.1:2525` or `[::1]:2525` to (host, port)."""
    host, colon, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"--listen {value!r}: use HOST:PORT, e.g. 127.0.0.1:2525")
    return host, int(port)
