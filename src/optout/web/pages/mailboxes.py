"""The mailboxes page: every sender mailbox with today's sends against its limit, what
waits, and whether it is paused and why; admins add mailboxes, pause and resume them
(R37, R40)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from optout.clock import utcnow
from optout.errors import Conflict, InvalidInput, NotFound, OptoutError
from optout.services.access.accounts import Role
from optout.services.mailboxes import sender_mailboxes
from optout.web.errors import status_of
from optout.web.pages.form_error import form_error
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

EMPTY_FORM = {
    "address": "",
    "display_name": "",
    "daily_limit": str(sender_mailboxes.DEFAULT_DAILY_LIMIT),
    "gap": str(sender_mailboxes.DEFAULT_GAP_SECONDS),
    "time_zone": "UTC",
}


def _list_page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, str] | None = None,
    error: OptoutError | None = None,
) -> HTMLResponse:
    with site_of(request).reading() as db:
        rows = sender_mailboxes.listing(db, workspace_id=viewer.workspace_id, now=utcnow())
    return page(
        request,
        "mailboxes.html",
        status_code=200 if error is None else status_of(error),
        viewer=viewer,
        rows=rows,
        is_admin=viewer.principal.role is Role.ADMIN,
        form=form or EMPTY_FORM,
        error=form_error(error),
    )


@router.get("/mailboxes", response_class=HTMLResponse)
def mailbox_list(request: Request, viewer: PageViewer) -> HTMLResponse:
    return _list_page(request, viewer)


def _number(value: str, *, field: str, label: str, unit: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{value.strip()!r} is not a whole number: type a number of {unit}", value=value
        ).at(field, label) from None


@router.post("/mailboxes/new", response_model=None)
def add_mailbox(
    request: Request,
    viewer: FormViewer,
    address: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    daily_limit: Annotated[str, Form()] = "",
    gap: Annotated[str, Form()] = "",
    time_zone: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "address": address,
        "display_name": display_name,
        "daily_limit": daily_limit,
        "gap": gap,
        "time_zone": time_zone,
    }
    viewer.principal.require(Role.ADMIN)
    try:
        with site_of(request).engine.begin() as db:
            made = sender_mailboxes.create(
                db,
                workspace_id=viewer.workspace_id,
                address=address,
                display_name=display_name,
                daily_limit=_number(
                    daily_limit, field="daily_limit", label="Daily limit", unit="emails"
                ),
                min_gap_seconds=_number(
                    gap, field="min_gap_seconds", label="Seconds between two sends", unit="seconds"
                ),
                time_zone=time_zone or "UTC",
                actor=viewer.actor,
                now=utcnow(),
            )
    except (InvalidInput, Conflict) as exc:
        return _list_page(request, viewer, form=form, error=exc)
    return redirect(request, "/mailboxes", done=f"Added {made.address}.")


def one_mailbox(db: Connection, viewer: Viewer, mailbox_id: int) -> sender_mailboxes.Mailbox:
    """The viewer's workspace's mailbox, or NotFound."""
    found = sender_mailboxes.listing(
        db, workspace_id=viewer.workspace_id, now=utcnow(), mailbox_id=mailbox_id
    )
    if not found:
        raise NotFound(f"no mailbox with id {mailbox_id}")
    return found[0]


@router.post("/mailboxes/{mailbox_id}/pause", response_model=None)
def pause_mailbox(
    request: Request,
    viewer: FormViewer,
    mailbox_id: int,
    reason: Annotated[str, Form()] = "",
) -> Response:
    viewer.principal.require(Role.ADMIN)
    with site_of(request).engine.begin() as db:
        box = one_mailbox(db, viewer, mailbox_id)
        sender_mailboxes.pause(
            db,
            workspace_id=viewer.workspace_id,
            address=box.address,
            reason=reason,
            actor=viewer.actor,
            now=utcnow(),
        )
    return redirect(request, "/mailboxes", done=f"Paused {box.address}: its emails wait.")


@router.post("/mailboxes/{mailbox_id}/resume", response_model=None)
def resume_mailbox(request: Request, viewer: FormViewer, mailbox_id: int) -> Response:
    viewer.principal.require(Role.ADMIN)
    with site_of(request).engine.begin() as db:
        box = one_mailbox(db, viewer, mailbox_id)
        sender_mailboxes.resume(
            db,
            workspace_id=viewer.workspace_id,
            address=box.address,
            actor=viewer.actor,
            now=utcnow(),
        )
    return redirect(request, "/mailboxes", done=f"Resumed {box.address}.")
