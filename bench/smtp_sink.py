"""A local SMTP server (aiosmtpd on 127.0.0.1) that accepts every message and keeps, for
each, its Message-ID, recipient and the moment it was accepted: what the benchmarks count
to prove nothing was lost or sent twice."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Accepted:
    message_id: str
    recipient: str
    at: float  # time.time() when the server answered 250


@dataclass
class Sink:
    accepted: list[Accepted] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        headers = content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(headers)
        message_id = found.group(1).decode("ascii", "replace") if found else ""
        at = time.time()
        with self._lock:
            self.accepted.extend(Accepted(message_id, str(r), at) for r in envelope.rcpt_tos)
        return "250 OK"

    def snapshot(self) -> list[Accepted]:
        with self._lock:
            return list(self.accepted)

    def clear(self) -> None:
        with self._lock:
            self.accepted.clear()

    def duplicates(self) -> dict[str, int]:
        """Message-IDs accepted more than once, with how often."""
        counts = Counter(a.message_id for a in self.snapshot())
        return {mid: n for mid, n in counts.items() if n > 1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_sink() -> Iterator[tuple[Sink, int]]:
    """The sink behind aiosmtpd on a free loopback port; yields it and the port."""
    sink = Sink()
    controller = Controller(sink, hostname=HOST, port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def transport_url(port: int) -> str:
    return f"smtp://{HOST}:{port}?security=none&timeout=60"
