"""The in-doubt page: emails the worker stopped on between handing them to the mail server
and recording its answer, with why; a person releases each (sent again with the same
Message-ID) or cancels it, and an admin chooses holding or automatic re-sending."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.errors import InvalidInput
from optout.services.access.accounts import Role
from optout.services.enrollments import in_doubt
from optout.web.errors import status_of
from optout.web.pages.form_error import form_error
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()


@router.get("/in-doubt", response_class=HTMLResponse)
def in_doubt_list(request: Request, viewer: PageViewer) -> HTMLResponse:
    return _list_page(request, viewer)


def _list_page(
    request: Request,
    viewer: Viewer,
    *,
    refused: InvalidInput | None = None,
    typed_minutes: str = "",
) -> HTMLResponse:
    """The page; after a refused policy, with the minutes as typed and why beside them."""
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        rows = in_doubt.listing(db, workspace_id=ws)
        total = in_doubt.count(db, workspace_id=ws)
        minutes = in_doubt.resend_minutes(db, workspace_id=ws)
    return page(
        request,
        "in_doubt.html",
        viewer=viewer,
        rows=rows,
        total=total,
        minutes=minutes,
        is_admin=viewer.principal.role == Role.ADMIN,
        error=form_error(refused),
        typed_minutes=typed_minutes,
        status_code=200 if refused is None else status_of(refused),
    )


@router.post("/in-doubt/{email_id}/release", response_model=None)
def release(request: Request, viewer: FormViewer, email_id: int) -> Response:
    with site_of(request).engine.begin() as db:
        in_doubt.release(
            db,
            workspace_id=viewer.workspace_id,
            email_id=email_id,
            actor=viewer.actor,
            now=utcnow(),
        )
    return redirect(
        request,
        "/in-doubt",
        done=f"Email {email_id} will be sent again, with the same "
        "Message-ID, by the next worker pass.",
    )


@router.post("/in-doubt/{email_id}/cancel", response_model=None)
def cancel(request: Request, viewer: FormViewer, email_id: int) -> Response:
    with site_of(request).engine.begin() as db:
        in_doubt.cancel(
            db,
            workspace_id=viewer.workspace_id,
            email_id=email_id,
            actor=viewer.actor,
            now=utcnow(),
        )
    return redirect(
        request, "/in-doubt", done=f"Email {email_id} is cancelled and will not be sent."
    )


@router.post("/in-doubt/policy", response_model=None)
def set_policy(
    request: Request,
    viewer: FormViewer,
    mode: Annotated[str, Form()] = "hold",
    minutes: Annotated[str, Form()] = "",
) -> Response:
    viewer.principal.require(Role.ADMIN)
    chosen: int | None = None
    try:
        if mode == "resend":
            try:
                chosen = int(minutes.strip())
            except ValueError:
                raise InvalidInput(
                    f"{minutes.strip()!r} is not a whole number: type a number of minutes, "
                    f"such as 60",
                    value=minutes,
                ).at("minutes", "Minutes before sending again") from None
        with site_of(request).engine.begin() as db:
            in_doubt.set_resend_minutes(
                db,
                workspace_id=viewer.workspace_id,
                minutes=chosen,
                actor=viewer.actor,
                now=utcnow(),
            )
    except InvalidInput as exc:
        return _list_page(request, viewer, refused=exc, typed_minutes=minutes)
    said = (
        "Emails in doubt are held until someone decides."
        if chosen is None
        else f"Emails in doubt are sent again after {chosen} minutes."
    )
    return redirect(request, "/in-doubt", done=said)
