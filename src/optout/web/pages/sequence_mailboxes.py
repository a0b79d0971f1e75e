"""A sequence's Mailboxes tab: which of the workspace's mailboxes it sends from, each
with its daily limit, gap and time zone; admins choose them (R37). New enrollments are
dealt over the chosen mailboxes; enrollments that have started keep theirs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.errors import InvalidInput
from optout.services.access.accounts import Role
from optout.services.enrollments import enrolling
from optout.services.mailboxes import sender_mailboxes
from optout.services.sequences import definitions
from optout.web.errors import status_of
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()


def _tab(
    request: Request,
    viewer: Viewer,
    sequence_id: int,
    *,
    error: InvalidInput | None = None,
) -> HTMLResponse:
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        view = definitions.overview(db, workspace_id=ws, name=name)
        counts = enrolling.count_by_status(db, workspace_id=ws, sequence_id=sequence_id)
        boxes = sender_mailboxes.listing(db, workspace_id=ws, now=utcnow())
        chosen = set(sender_mailboxes.of_sequence(db, sequence_id=sequence_id))
    return page(
        request,
        "sequence_mailboxes.html",
        status_code=200 if error is None else status_of(error),
        viewer=viewer,
        seq=view,
        counts=counts,
        tab="mailboxes",
        boxes=boxes,
        chosen=chosen,
        is_admin=viewer.principal.role is Role.ADMIN,
        error=error.message if error is not None else "",
    )


@router.get("/sequences/{sequence_id}/mailboxes", response_class=HTMLResponse)
def mailboxes_tab(request: Request, viewer: PageViewer, sequence_id: int) -> HTMLResponse:
    return _tab(request, viewer, sequence_id)


@router.post("/sequences/{sequence_id}/mailboxes", response_model=None)
def choose_mailboxes(
    request: Request,
    viewer: FormViewer,
    sequence_id: int,
    mailbox: Annotated[list[str] | None, Form()] = None,
) -> Response:
    viewer.principal.require(Role.ADMIN)
    ws = viewer.workspace_id
    try:
        with site_of(request).engine.begin() as db:
            definitions.spec(db, workspace_id=ws, sequence_id=sequence_id)  # NotFound: 404
            chosen = sender_mailboxes.set_for_sequence(
                db,
                workspace_id=ws,
                sequence_id=sequence_id,
                addresses=mailbox or [],
                actor=viewer.actor,
                now=utcnow(),
            )
    except InvalidInput as exc:
        return _tab(request, viewer, sequence_id, error=exc)
    done = f"New enrollments send from {', '.join(chosen)}; started ones keep their mailbox."
    return redirect(request, f"/sequences/{sequence_id}/mailboxes", done=done)
