"""Staying inside a CRM's limits (R32): a sliding-window request limiter that also honours
pauses the CRM asks for (429 + Retry-After, an exhausted window in the headers), and the
Salesforce daily API allowance read from `Sforce-Limit-Info`.

Clock and sleep are parameters, so tests drive them and never wait for real.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable

from optout.crm.protocol import BudgetExhausted

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class WindowLimiter:
    """At most `limit` requests in any `window` seconds (None: no limit of our own)."""

    def __init__(self, limit: int | None, window: float, *, clock: Clock, sleep: Sleep) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._resume_at = 0.0
        self._lock = threading.Lock()  # a connector may serve concurrent webhooks
        self.waited = 0.0  # seconds spent waiting, for the sync log and benchmarks

    def acquire(self) -> None:
        """Wait until one more request fits, then count it."""
        with self._lock:
            self._acquire()

    def _acquire(self) -> None:
        now = self._wait_until(self._resume_at)
        if self.limit:
            while True:
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    break
                now = self._wait_until(self._sent[0] + self.window)
        self._sent.append(now)

    def pause(self, seconds: float) -> None:
        """The CRM said to wait (a 429, or no requests left in its window)."""
        self._resume_at = max(self._resume_at, self._clock() + max(seconds, 0.0))

    def _wait_until(self, moment: float) -> float:
        now = self._clock()
        if moment > now:
            self._sleep(moment - now)
            self.waited += moment - now
            now = max(self._clock(), moment)
        return now


_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class Budget:
    """Salesforce's API allowance: slow down past `slow_at` of it, stop past `stop_at`."""

    def __init__(self, *, slow_at: float, stop_at: float, slow_delay: float, sleep: Sleep) -> None:
        self.slow_at = slow_at
        self.stop_at = stop_at
        self.slow_delay = slow_delay
        self._sleep = sleep
        self.used: int | None = None
        self.limit: int | None = None

    def observe(self, header: str | None) -> None:
        """Read `Sforce-Limit-Info: api-usage=18/15000` from a response."""
        found = _API_USAGE.search(header or "")
        if found:
            self.used, self.limit = int(found.group(1)), int(found.group(2))

    @property
    def share(self) -> float:
        if not self.used or not self.limit:
            return 0.0
        return self.used / self.limit

    def check(self) -> None:
        """Before a request: stop near the allowance, slow down as it approaches."""
        if self.share >= self.stop_at:
            raise BudgetExhausted(
                f"Salesforce API usage is at {self.used}/{self.limit}; stopping at "
                f"{self.stop_at:.0%} of the allowance, the sync resumes from its bookmark later"
            )
        if self.share >= self.slow_at:
            self._sleep(self.slow_delay)
