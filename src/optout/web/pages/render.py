"""How the signed-in pages answer: their templates, the filters the templates use, the
security headers, redirects (htmx-aware) and the page shown for an error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from optout.audit_words import actor_words, event_words
from optout.eligibility.precedence import check_label
from optout.errors import OptoutError
from optout.filters.confusables import readable as readable_domain
from optout.filters.words import readable as filter_words
from optout.web.errors import status_of
from optout.web.notices import Notice, clear_notice, read_notice, set_notice

# Pages of signed-in users: never cached. The security headers (scripts and styles only
# from this server, never framed, no sniffing) are added to every response by
# `web.headers.SecurityHeaders`.
PAGE_HEADERS: Mapping[str, str] = {"Cache-Control": "no-store"}


DASH = "\N{EN DASH}"  # an empty cell


def _number(value: float | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _percent(value: float, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%"


def _moment(value: datetime | date | str | None, with_time: bool = True) -> str:
    """Stored datetimes are naive UTC; shown to the minute."""
    if value is None or value == "":
        return DASH
    if isinstance(value, str):
        return value.split(".", 1)[0].replace("T", " ")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
    return value.isoformat()


def _humanize(value: str) -> str:
    return value.replace("_", " ")


def with_query(base: str, **params: Any) -> str:
    """`base` with the given query parameters (None values left out)."""
    given = {k: v for k, v in params.items() if v is not None and v != ""}
    return f"{base}?{urlencode(given, doseq=True)}" if given else base


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("optout.web", "templates/app"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=_number,
        percent=_percent,
        moment=_moment,
        humanize=_humanize,
        check_label=check_label,
        filter_words=filter_words,
        actor=actor_words,
        event_words=event_words,
        urlpart=lambda text: quote(str(text), safe=""),
    )
    env.globals.update(query=with_query, readable=readable_domain)
    return env


TEMPLATES = _templates()


def html(name: str, **context: Any) -> Markup:
    """A template rendered to markup (for parts composed into another page)."""
    return Markup(TEMPLATES.get_template(name).render(**context))


def page(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A whole page or an htmx fragment, rendered with the request's path at hand (for the
    navigation) and the page headers. A whole page shows the notice the last redirect
    set (`done`, `problem`), unless the caller gives its own, and clears it."""
    whole = request.headers.get("HX-Request") != "true"
    notice = read_notice(request) if whole else Notice()
    context.setdefault("done", notice.done)
    context.setdefault("problem", notice.problem)
    body = TEMPLATES.get_template(name).render(path=request.url.path, **context)
    answer = HTMLResponse(body, status_code=status_code, headers=dict(PAGE_HEADERS))
    if whole:
        clear_notice(request, answer)
    return answer


def redirect(request: Request, location: str, *, done: str = "", problem: str = "") -> Response:
    """See other: a 303 for a plain form POST; for an htmx request, an `HX-Redirect` that
    makes the browser load the page itself instead of swapping it into a fragment. `done`
    or `problem`: the notice the page there shows (kept in the session, never put in the
    address, where anyone could write one)."""
    if request.headers.get("HX-Request") == "true":
        answer = Response(status_code=200, headers={"HX-Redirect": location, **PAGE_HEADERS})
    else:
        answer = Response(status_code=303, headers={"Location": location, **PAGE_HEADERS})
    return set_notice(request, answer, Notice(done=done, problem=problem))


def to_sign_in(request: Request) -> Response:
    """Off to the sign-in page, coming back here afterwards (GET pages only)."""
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    back = (
        target if request.method == "GET" and request.headers.get("HX-Request") != "true" else "/"
    )
    return redirect(request, with_query("/login", next=back if back != "/" else None))


def error_page(request: Request, error: OptoutError) -> HTMLResponse:
    """The page for an error no page answered itself: the message, and for a refused form
    a way back to the page it was on (where the browser's Back keeps what was typed)."""
    status = status_of(error)
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Cannot do that"}
    if request.headers.get("HX-Request") == "true":
        return page(request, "fragments/error.html", status_code=status, message=error.message)
    return page(
        request,
        "error.html",
        status_code=status,
        title=titles.get(status, "Something went wrong"),
        message=error.message,
        back=_form_page_of(request),
    )


def _form_page_of(request: Request) -> str:
    """The page of this site a form was posted from ("" for anything else): its path and
    query, taken from the Referer only when it names this very host."""
    if request.method != "POST":
        return ""
    came_from = urlsplit(request.headers.get("Referer", ""))
    if came_from.netloc != request.headers.get("Host") or not came_from.path.startswith("/"):
        return ""
    return came_from.path + (f"?{came_from.query}" if came_from.query else "")
