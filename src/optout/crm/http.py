"""The HTTP client both connectors share: counts requests, waits for the limiter, retries
rate-limited (429), failed (5xx) and dropped requests with backoff, lets a connector renew
its credentials once on 401, and translates httpx errors into ConnectorError at the
boundary (STYLE 8). Every request goes through the outbound guard (`optout.crm.outbound`),
with a short connect timeout and a bounded read timeout; a call that timed out is tried
again at most `timeout_retries` times, so a CRM that takes connections and never answers
costs a sync a bounded wait, and a connection test one timeout. What it says about a
failure is for a person: the CRM's HTTP status and a plain sentence, never the CRM's own
answer nor the socket's."""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import certifi
import httpx

from optout.config import CRM_CONNECT_TIMEOUT, CRM_READ_TIMEOUT, CrmTimeouts
from optout.crm.outbound import GuardedTransport
from optout.crm.ratelimit import Clock, Sleep, WindowLimiter
from optout.errors import ConnectorError

Headers = Callable[[], Mapping[str, str]]


class Unreachable(ConnectorError):
    """The CRM could not be reached, or did not answer in time."""


CONNECT_TIMEOUT = CRM_CONNECT_TIMEOUT  # seconds to open a connection
READ_TIMEOUT = CRM_READ_TIMEOUT  # seconds to wait for an answer
log = logging.getLogger(__name__)

# The plain sentence beside an HTTP status a CRM answered with.
STATUS_WORDS: Mapping[int, str] = {
    400: "it did not understand the request",
    401: "it did not accept the credentials",
    403: "the credentials may not do this",
    404: "it has nothing at that address",
    405: "that address does not take this request",
    408: "it gave up waiting for the request",
    409: "it refused the change because of a conflict",
    413: "the request was too large for it",
    415: "it does not take requests in that form",
    422: "it refused the data sent",
    429: "its rate limit was reached",
}


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
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        timeout_retries: int = 1,
        allowed_hosts: frozenset[str] = frozenset(),
        words: Mapping[int, str] | None = None,
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
        self._words = {**STATUS_WORDS, **(words or {})}
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._timeout_retries = timeout_retries
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
            transport=GuardedTransport(name=name, allowed=allowed_hosts, verify=tls_context()),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would pass the guard by
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
        timeouts = 0
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
            except httpx.InvalidURL as exc:
                raise ConnectorError(f"{self.name}: {url} is not a valid address") from exc
            except httpx.HTTPError as exc:
                attempt += 1
                if isinstance(exc, httpx.TimeoutException):
                    timeouts += 1
                if attempt > self._max_retries or timeouts > self._timeout_retries:
                    raise Unreachable(self.network_words(exc)) from exc
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
                        f"{self.status_words(response)}, still after {self._max_retries} retries"
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
            raise ConnectorError(self.status_words(response))

    def json(
        self,
        method: str,
        url: str,
        *,
        shape: type[dict[str, Any]] | type[list[Any]] = dict,
        **kwargs: Any,
    ) -> Any:
        """`request`, and the answer's JSON, which must be an object (or a list with
        `shape=list`); ConnectorError for any other answer."""
        return self.parse(self.request(method, url, **kwargs), shape=shape)

    def parse(
        self, response: httpx.Response, *, shape: type[dict[str, Any]] | type[list[Any]] = dict
    ) -> Any:
        """The JSON of an accepted answer; ConnectorError when it is not JSON of `shape`."""
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, shape):
            what = "a JSON object" if shape is dict else "a JSON list"
            log.warning(
                "%s answered %s to %s with something else than %s: %r",
                self.name, response.status_code, response.request.url.path, what,
                _excerpt(response),
            )  # fmt: skip
            raise ConnectorError(
                f"{self.name} answered {response.status_code} but not with {what}, as its "
                f"API does: check that the address is the one of {self.name}'s API"
            )
        return data

    def status_words(self, response: httpx.Response) -> str:
        """A refused answer in plain words: the status and what it means, not the body
        (the body goes to the log, for whoever runs optout)."""
        status = response.status_code
        log.warning(
            "%s answered %s to %s %s: %r",
            self.name, status, response.request.method, response.request.url.path,
            _excerpt(response),
        )  # fmt: skip
        if status >= 500:
            words = "it failed on its side; try again later"
        elif 300 <= status < 400:
            words = "it sent optout to another address, which optout does not follow"
        else:
            words = self._words.get(status, "it refused the request")
        return f"{self.name} answered HTTP {status}: {words}"

    def network_words(self, exc: httpx.HTTPError) -> str:
        """A network failure as a person would say it, not as the socket does."""
        where = _where(exc)
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            within = _seconds(self._connect_timeout)
            return f"{self.name} could not be reached within {within}{where}"
        if isinstance(exc, httpx.TimeoutException):
            return f"{self.name} did not answer within {_seconds(self._read_timeout)}{where}"
        causes = _causes(exc)
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return f"{self.name}: nothing is listening at {_host_port(exc)} (connection refused)"
        if any(isinstance(c, socket.gaierror) for c in causes):
            return f"{self.name}: the name of that address was not found{where}"
        if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
            return f"{self.name}: its certificate was not accepted{where}"
        if any(isinstance(c, ssl.SSLError) for c in causes):
            return f"{self.name}: the secure connection could not be set up{where}"
        if isinstance(exc, httpx.ConnectError):
            return f"{self.name} could not be reached{where}"
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return f"{self.name} closed the connection without answering{where}"
        return f"{self.name} could not be reached{where}"


def timeout_options(timeouts: CrmTimeouts | None) -> dict[str, Any]:
    """The keyword arguments of `Http` that `timeouts` stands for (the defaults: None)."""
    timeouts = timeouts or CrmTimeouts()
    return {
        "connect_timeout": timeouts.connect,
        "read_timeout": timeouts.read,
        "timeout_retries": timeouts.retries,
    }


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


def _seconds(value: float) -> str:
    return f"{value:g} second" if value == 1 else f"{value:g} seconds"


def _excerpt(response: httpx.Response) -> str:
    return response.text[:300].replace("\n", " ")


def _where(exc: httpx.HTTPError) -> str:
    try:
        url = exc.request.url
    except RuntimeError:  # an error raised before any request was made
        return ""
    return f" ({url.scheme}://{url.netloc.decode('ascii', 'replace')})"


def _host_port(exc: httpx.HTTPError) -> str:
    try:
        url = exc.request.url
    except RuntimeError:  # an error raised before any request was made
        return "that address"
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.host}:{port}"


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
