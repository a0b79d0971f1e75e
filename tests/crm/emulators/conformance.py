"""Every request an emulator receives and every answer it gives, checked against the
real API's shapes (tests/crm/schemas). A deviation is recorded with the request that
caused it; the CRM tests' fixture fails the test during which one was recorded, so an
emulator that drifts from the real API, or a connector that sends what the real API
would refuse, fails the test that showed it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from tests.crm.schemas.shapes import check


@dataclass(frozen=True)
class Deviation:
    emulator: str
    request: str
    problem: str

    def __str__(self) -> str:
        return f"{self.emulator} {self.request}: {self.problem}"


_recorded: list[Deviation] = []
_lock = threading.Lock()


def recorded() -> list[Deviation]:
    with _lock:
        return list(_recorded)


def forget(deviations: list[Deviation]) -> None:
    with _lock:
        for deviation in deviations:
            if deviation in _recorded:
                _recorded.remove(deviation)


class Conformance:
    """One emulator's checks. `enabled=False` (benchmarks at 100,000 records) skips them."""

    def __init__(self, name: str, *, enabled: bool = True) -> None:
        self.name = name
        self.enabled = enabled
        self.checked = 0  # requests and answers checked

    def record(self, request: str, problems: list[str]) -> None:
        if not problems:
            return
        with _lock:
            _recorded.extend(Deviation(self.name, request, p) for p in problems)

    def take(self) -> list[Deviation]:
        """This emulator's deviations so far, forgotten: for the tests that make one on
        purpose to prove it is caught."""
        with _lock:
            mine = [d for d in _recorded if d.emulator == self.name]
            for deviation in mine:
                _recorded.remove(deviation)
        return mine

    def check_json(self, request: str, body: bytes, kind: Any, what: str) -> None:
        if not self.enabled:
            return
        self.checked += 1
        try:
            data = json.loads(body) if body else None
        except ValueError:
            self.record(request, [f"{what} is not JSON: {body[:80]!r}"])
            return
        if kind is None:
            if body:
                self.record(request, [f"{what} has a body where the API sends none"])
            return
        self.record(request, [f"{what} {p}" for p in check(data, kind)])

    async def answer(
        self,
        request: Request,
        response: Response,
        answers: Mapping[int, Any],
        *,
        also: Callable[[int, Any], list[str]] | None = None,
    ) -> Response:
        """Check the answer's body against the shape for its status; return an answer
        with the same status, headers and body."""
        if not self.enabled:
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        name = f"{request.method} {request.url.path}"
        status = response.status_code
        if status not in answers:
            self.record(name, [f"answered HTTP {status}, which the API does not answer here"])
        else:
            self.check_json(name, body, answers[status], f"answer {status}")
            if also is not None and body:
                self.record(name, also(status, json.loads(body)))
        return Response(
            content=body,
            status_code=status,
            headers={k: v for k, v in response.headers.items() if k != "content-length"},
        )
