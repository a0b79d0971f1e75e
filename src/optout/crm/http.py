"""The HTTP client both connectors share: counts requests, waits for the limiter, retries
rate-limited (429), failed (5xx) and dropped requests with backoff, lets a connector renew
its credentials once on 401, and translates httpx errors into ConnectorError at the
boundary (STYLE 8)."""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import certifi
import httpx

from optout.crm.ratelimit import Clock, Sleep, WindowLimiter
from optout.errors import ConnectorError

Headers = Callable[[], Mapping[str, str]]


class Http:
    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        headers: Headers,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        retry_after_default: float = 10.0,
        max_retries: int = 6,
        timeout: float = 30.0,
        before: Callable[[], None] | None = None,
        after: Callable[[httpx.Response], None] | None = None,
        renew: Callable[[httpx.Response], bool] | None = None,
    ) -> None:
        self.name = name
        self.calls = 0
        self.rate_limited = 0  # 429 answers met
        self._headers = headers
        self._clock = clock
        self._sleep = sleep
        self._retry_after_default = retry_after_default
        self._max_retries = max_retries
        self._before = before
        self._after = after
        self._renew = renew
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, verify=tls_context()
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        limiter: WindowLimiter | None = None,
        accept: tuple[int, ...] = (200, 201, 204, 207),
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send, retrying what is worth retrying; ConnectorError for any other answer."""
        attempt = 0
        renewed = False
        while True:
            if self._before is not None:
                self._before()
            if limiter is not None:
                limiter.acquire()
            self.calls += 1
            try:
                response = self._client.request(
                    method, url, headers={**self._headers(), **(headers or {})}, **kwargs
                )
            except httpx.HTTPError as exc:
                attempt += 1
                if attempt > self._max_retries:
                    raise ConnectorError(f"{self.name}: {method} {url} failed: {exc}") from exc
                self._sleep(min(0.5 * 2 ** (attempt - 1), 30.0))
                continue
            if self._after is not None:
                self._after(response)
            if response.status_code in accept:
                return response
            if response.status_code == 401 and self._renew is not None and not renewed:
                renewed = self._renew(response)
                if renewed:
                    continue
            if response.status_code == 429 or response.status_code >= 500:
                attempt += 1
                if attempt > self._max_retries:
                    raise ConnectorError(
                        f"{self.name}: {method} {url} still answered {response.status_code} "
                        f"after {self._max_retries} retries: {_excerpt(response)}"
                    )
                if response.status_code == 429:
                    self.rate_limited += 1
                    delay = retry_after(response, self._retry_after_default)
                    if limiter is not None:
                        limiter.pause(delay)
                    else:
                        self._sleep(delay)
                else:
                    self._sleep(min(0.5 * 2 ** (attempt - 1), 30.0))
                continue
            raise ConnectorError(
                f"{self.name}: {method} {url} answered {response.status_code}: {_excerpt(response)}"
            )


@cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: loading the CA bundle costs ~0.1 s,
    too much to pay for each webhook."""
    return ssl.create_default_context(cafile=certifi.where())


def retry_after(response: httpx.Response, default: float) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _excerpt(response: httpx.Response) -> str:
    return response.text[:300].replace("\n", " ")
