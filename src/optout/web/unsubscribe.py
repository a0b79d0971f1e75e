"""The hosted unsubscribe page behind every email's link (R3).

GET shows a confirm page and changes nothing: mail scanners and link previews
fetch GETs. POST is the act, as RFC 8058 one-click requires: form-encoded or
multipart, with no cookie, login or CSRF token (the signed token in the path is
the credential), answered 200 without a redirect, and idempotent.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from optout.clock import utcnow
from optout.db.engine import read_transaction
from optout.db.retry import BUDGET_SECONDS, is_busy, retrying
from optout.errors import NotFound
from optout.mail.tokens import Claims, InvalidToken
from optout.services.suppression import unsubscribes
from optout.web import unsubscribe_spool
from optout.web.site import Site, site_of

router = APIRouter(include_in_schema=False)

ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"


@router.get("/u/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request) -> HTMLResponse:
    site = site_of(request)
    try:
        claims = site.tokens.read(token)
        with read_transaction(site.engine) as db:  # never waits behind a writer
            person = unsubscribes.recipient(db, claims=claims)
    except (InvalidToken, NotFound, unsubscribes.AddressChanged) as exc:
        return _refusal(site, exc)
    return site.page(
        "unsubscribed.html" if person.opted_out else "confirm.html",
        workspace=person.workspace_name,
        address=mask_email(person.email),
        already=person.opted_out,
    )


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    site = site_of(request)
    # The POST itself is the act; the body (form fields or multipart) only tells us how
    # it came, for the ledger. Reading it raw needs no form parser.
    body = await request.body()
    evidence = "RFC 8058 one-click POST" if ONE_CLICK_BODY in body else "unsubscribe page POST"
    try:
        claims = site.tokens.read(token)
        person = await run_in_threadpool(_unsubscribe, site, claims, evidence)
    except (InvalidToken, NotFound, unsubscribes.AddressChanged) as exc:
        return _refusal(site, exc)
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        folder = unsubscribe_spool.folder_of(site.engine)
        if folder is None or not _busy(exc):
            raise
        # Locked past the budget, or every connection busy waiting for the lock: keep the
        # click on disk, written as soon as the database lets it (with this moment as its
        # time), rather than fail the person.
        try:
            kept = await run_in_threadpool(_keep, site, folder, token, claims, evidence)
        except (NotFound, unsubscribes.AddressChanged) as gone:
            return _refusal(site, gone)
        if kept is None:
            return site.page("unsubscribed.html", workspace=None, address=None, already=False)
        person = kept
    return site.page(
        "unsubscribed.html",
        workspace=person.workspace_name,
        address=mask_email(person.email),
        already=False,
    )


def _busy(error: Exception) -> bool:
    """A busy database, or no connection free within the pool's wait (every one held by a
    request waiting for the write lock)."""
    return isinstance(error, sa.exc.TimeoutError) or is_busy(error)


def _unsubscribe(site: Site, claims: Claims, evidence: str) -> unsubscribes.Recipient:
    """Opt out within the answer: a busy database (another writer holding the lock, a
    PostgreSQL serialization failure) is tried again for up to BUDGET_SECONDS."""

    def once(db: Connection) -> unsubscribes.Recipient:
        return unsubscribes.unsubscribe(db, claims=claims, now=utcnow(), evidence=evidence)

    try:
        return retrying(site.engine, once, budget=BUDGET_SECONDS)
    except sa.exc.IntegrityError:
        # Two first clicks at once (a mail provider's one-click and the person) can race
        # to insert the same opt-out; the loser's retry sees it committed and repeats it.
        return retrying(site.engine, once, budget=BUDGET_SECONDS)


def _keep(
    site: Site, folder: Path, token: str, claims: Claims, evidence: str
) -> unsubscribes.Recipient | None:
    """Spool the click first, then read whom it stands for to say so; None when not even a
    read can have a connection now (the page then thanks without naming the address)."""
    unsubscribe_spool.keep(folder, token=token, evidence=evidence, at=utcnow())
    try:
        with read_transaction(site.engine) as db:  # a snapshot: never waits behind the writer
            return unsubscribes.recipient(db, claims=claims)
    except sa.exc.TimeoutError:
        return None


def _refusal(
    site: Site, error: InvalidToken | NotFound | unsubscribes.AddressChanged
) -> HTMLResponse:
    if isinstance(error, unsubscribes.AddressChanged):
        return site.page(
            "refused.html",
            status=409,
            title="This link no longer applies",
            message=(
                "This link was sent to an address that is no longer on file for this "
                "contact, so it cannot unsubscribe anyone. Use the link in a more recent "
                "email, or reply to one and ask to be removed."
            ),
        )
    if isinstance(error, InvalidToken):
        message = (
            "This unsubscribe link is not valid. It may have been cut short when it was "
            "copied: open it again straight from the email."
        )
    else:
        message = (
            "The contact this link was sent to is no longer on file, so there is nothing "
            "to unsubscribe. If you still receive emails, reply to one and ask to be removed."
        )
    return site.page("refused.html", status=404, title="Link not found", message=message)


def mask_email(address: str) -> str:
    """`jane@acme.com` becomes `j***@acme.com`: enough to recognise, not to harvest."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
