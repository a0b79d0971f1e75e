"""Signing in and out. The session cookie is HttpOnly and SameSite=Lax (Secure over
https); its CSRF token comes back with every form and htmx request.

The sign-in form has no session yet, so it carries a token of its own: a random value
both in a short-lived cookie and in the form, which must agree (a page on another site
can post a form here but can neither read nor set that cookie). That stops another
site from signing a visitor in to an account of its choosing."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.db.engine import read_transaction
from optout.errors import NotFound, TooManyAttempts
from optout.services import workspaces
from optout.services.access import accounts, sign_in_limits
from optout.services.access.accounts import NotAllowed, NotSignedIn
from optout.web.auth import CSRF_FIELD, SESSION_COOKIE
from optout.web.clients import client_of, over_https
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer
from optout.web.same_site import same_site_path
from optout.web.site import site_of

router = page_router()

WRONG = "Wrong workspace, email or password."
STALE = "This sign-in form has expired. Please sign in again."
LOGIN_CSRF_COOKIE = "optout_login_csrf"
LOGIN_CSRF_LIFETIME = 60 * 60  # seconds a sign-in form stays usable


@router.get("/login", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str = "/") -> HTMLResponse:
    return _form(request, next, "", "", error="", status=200)


@router.post("/login", response_model=None)
def sign_in(
    request: Request,
    workspace: Annotated[str, Form()],
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    site = site_of(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return _form(request, next, workspace, email, error=STALE, status=403)
    client = client_of(request)
    now = utcnow()
    try:
        with read_transaction(site.engine) as db:
            sign_in_limits.check(db, email=email, client=client, now=now)
    except TooManyAttempts as locked:
        answer = _form(request, next, workspace, email, error=locked.message, status=429)
        answer.headers["Retry-After"] = str(locked.retry_after_seconds)
        return answer
    try:
        # The slow password hash runs in a read transaction: no write lock waits on it.
        with read_transaction(site.engine) as db:
            try:
                workspace_id: int | None = workspaces.get(db, slug=workspace.strip().lower()).id
            except NotFound:
                workspace_id = None  # the password is checked all the same: as slow an answer
            checked = accounts.check_credentials(
                db, email=email, password=password, workspace_id=workspace_id
            )
        with site.engine.begin() as db:
            token, _ = accounts.open_session(db, credentials=checked, now=now)
            sign_in_limits.record(db, email=email, client=client, succeeded=True, now=now)
    except (NotSignedIn, NotAllowed):
        with site.engine.begin() as db:
            sign_in_limits.record(db, email=email, client=client, succeeded=False, now=now)
        return _form(request, next, workspace, email, error=WRONG, status=401)
    response = redirect(request, same_site_path(next))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=over_https(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", httponly=True, samesite="lax")
    return response


def _form(
    request: Request, next: str, workspace: str, email: str, *, error: str, status: int
) -> HTMLResponse:
    """The sign-in form with a fresh form token, set in its cookie too."""
    token = secrets.token_urlsafe(32)
    with site_of(request).reading() as db:
        demo_workspaces = workspaces.demo_slugs(db)
    answer = page(
        request,
        "login.html",
        status_code=status,
        next=same_site_path(next),
        error=error,
        workspace=workspace,
        email=email,
        csrf_field=CSRF_FIELD,
        csrf=token,
        demo_workspaces=demo_workspaces,
    )
    answer.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_CSRF_LIFETIME,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=over_https(request),
    )
    return answer


@router.post("/logout", response_model=None)
def sign_out(request: Request, viewer: FormViewer) -> Response:
    with site_of(request).engine.begin() as db:
        accounts.sign_out(db, token=request.cookies.get(SESSION_COOKIE, ""))
    response = redirect(request, "/login")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response
