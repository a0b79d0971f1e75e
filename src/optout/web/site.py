"""What every request handler of the web app shares: settings, engine, token keys, pages."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, cast

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection, Engine

from optout.config import Settings
from optout.db.engine import read_transaction
from optout.mail.tokens import UnsubscribeTokens

# Public pages reached from an email: never cached, indexed, framed or leaking the token
# through a Referer; no script runs, the one style sheet is this server's, and the only
# form posts back to the same address.
PAGE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@dataclass(frozen=True)
class Site:
    settings: Settings
    engine: Engine
    tokens: UnsubscribeTokens
    templates: jinja2.Environment

    def reading(self) -> AbstractContextManager[Connection]:
        """A unit of work for a page that only reads: on SQLite it never waits behind the
        write lock (`optout.db.engine.read_transaction`)."""
        return read_transaction(self.engine)

    def page(self, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=dict(PAGE_HEADERS))


def page_templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("optout.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def site_of(request: Request) -> Site:
    return cast(Site, request.app.state.site)
