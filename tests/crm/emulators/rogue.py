"""A server that answers whatever a test tells it to and records every request it gets:
the CRM that misbehaves (a redirect, a page of HTML, an answer naming another host) and
the internal service an attacker would like optout to reach."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response

Answer = Callable[[Request], Response]


@dataclass
class Rogue:
    answer: Answer = field(default=lambda _request: Response("ok"))
    hits: list[str] = field(default_factory=list)  # "METHOD /path" of every request
    authorizations: list[str] = field(default_factory=list)
    url: str = ""

    @property
    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        async def handle(request: Request) -> Response:
            await request.body()
            self.hits.append(f"{request.method} {request.url.path}")
            self.authorizations.append(request.headers.get("authorization", ""))
            return self.answer(request)

        return app
