"""Who is calling: an API key (`Authorization: Bearer ok_...`) for the JSON API, a session
cookie for the pages, and the CSRF check for page forms. FastAPI dependencies."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db.engine import read_transaction
from optout.services.access import accounts
from optout.services.access.accounts import NotAllowed, NotSignedIn, Principal, Role
from optout.web.site import site_of

SESSION_COOKIE = "optout_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def api_principal(request: Request, background: BackgroundTasks) -> Principal:
    """The API key's principal; 401 without a valid key. The key is checked in a read
    transaction (on SQLite it never waits behind a writer); its use is recorded after the
    response."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise NotSignedIn("send an API key: Authorization: Bearer ok_...")
    engine, now = site_of(request).engine, utcnow()
    with read_transaction(engine) as db:
        principal = accounts.api_key_principal(db, key=key.strip(), now=now)
    assert principal.api_key_id is not None
    background.add_task(_record_use, engine, principal.api_key_id, now)
    return principal


def _record_use(engine: Engine, key_id: int, now: datetime) -> None:
    with read_transaction(engine) as db:
        if not accounts.api_key_use_is_stale(db, key_id=key_id, now=now):
            return
    with engine.begin() as db:
        accounts.touch_api_key(db, key_id=key_id, now=now)


def session(request: Request) -> tuple[Principal, str]:
    """The signed-in user's principal and the session's CSRF token; NotSignedIn otherwise."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise NotSignedIn("please sign in")
    with read_transaction(site_of(request).engine) as db:  # never waits behind a writer
        return accounts.session_principal(db, token=token, now=utcnow())


def page_principal(request: Request) -> Principal:
    return session(request)[0]


async def checked_form_principal(request: Request) -> Principal:
    """For a page form POST: the session's principal after the CSRF token matched (a form
    field or the X-CSRF-Token header, which htmx sends)."""
    principal, expected = session(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    # Bytes, not str: compare_digest raises TypeError on a str holding non-ASCII.
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise NotAllowed("the form is stale or forged (CSRF token mismatch); reload the page")
    return principal


def admin(principal: Principal) -> Principal:
    principal.require(Role.ADMIN)
    return principal


ApiPrincipal = Annotated[Principal, Depends(api_principal)]
PagePrincipal = Annotated[Principal, Depends(page_principal)]
FormPrincipal = Annotated[Principal, Depends(checked_form_principal)]
