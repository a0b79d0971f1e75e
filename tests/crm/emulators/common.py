"""What both emulators share: a clock tests drive, modification times, failure injection."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Monotonic seconds that only move when someone sleeps: the connector's limiter and
    the emulator's rate window share one, so rate-limit tests never wait for real."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.slept = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(seconds, 0.0)
            self.slept += max(seconds, 0.0)


class Stamps:
    """Strictly increasing modification times (milliseconds), near the wall clock."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self, at: datetime | None = None) -> int:
        with self._lock:
            if at is not None:
                ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
            else:
                ms = max(self._last + 1, int(time.time() * 1000))
            self._last = max(self._last, ms)
            return ms


def ms_to_datetime(ms: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


@dataclass
class Rule:
    method: str
    suffix: str
    status: int
    times: int
    body: object = None
    skip: int = 0  # let this many matching requests through first


@dataclass
class Failures:
    """Answers to inject: the next `times` requests matching (method, path suffix) get
    `status` (and `body`)."""

    rules: list[Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        method: str,
        suffix: str,
        status: int,
        times: int = 1,
        body: object = None,
        skip: int = 0,
    ) -> None:
        with self._lock:
            self.rules.append(Rule(method.upper(), suffix, status, times, body, skip))

    def take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.method == method and path.endswith(rule.suffix) and rule.times > 0:
                    if rule.skip > 0:
                        rule.skip -= 1
                        continue
                    rule.times -= 1
                    return rule
        return None


class Window:
    """At most `limit` requests per `seconds` on the given clock (a sliding log)."""

    def __init__(self, limit: int | None, seconds: float, clock: FakeClock | None) -> None:
        self.limit = limit
        self.seconds = seconds
        self.clock = clock or time.monotonic
        self.sent: deque[float] = deque()
        self.lock = threading.Lock()

    def admit(self) -> tuple[bool, int, float]:
        """(admitted, remaining, seconds until a slot frees)."""
        with self.lock:
            now = self.clock()
            while self.sent and self.sent[0] <= now - self.seconds:
                self.sent.popleft()
            if self.limit is None:
                return True, 1_000_000, 0.0
            if len(self.sent) >= self.limit:
                return False, 0, self.sent[0] + self.seconds - now
            self.sent.append(now)
            return True, self.limit - len(self.sent), 0.0
