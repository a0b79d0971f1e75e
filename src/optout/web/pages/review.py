"""The review queue page: inbound messages waiting for a person's decision (unsubscribe
replies flagged for review, R4, and messages that matched no enrollment), each with the
message and one-click actions (opt out, dismiss, attach to a person), and the latest
decisions with who took them and when. The rules are in `services.suppression.review_queue`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.errors import InvalidInput, NotFound, OptoutError
from optout.services.suppression import review_queue
from optout.web.errors import status_of
from optout.web.pages.form_error import form_error
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()
DECISION_LABELS = {
    "opted_out": "Opted out",
    "dismissed": "Dismissed",
    "attached": "Attached to a person",
}


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, viewer: PageViewer) -> HTMLResponse:
    return _review_page(request, viewer)


def _review_page(
    request: Request, viewer: Viewer, *, refused: OptoutError | None = None, typed: str = ""
) -> HTMLResponse:
    """The queue; after a refused "attach", with the address typed and why beside it."""
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        waiting = review_queue.pending(db, workspace_id=ws)
        total = review_queue.count_pending(db, workspace_id=ws)
        recent = review_queue.decided(db, workspace_id=ws)
    return page(
        request,
        "review.html",
        viewer=viewer,
        waiting=waiting,
        total=total,
        recent=recent,
        labels=DECISION_LABELS,
        error=form_error(refused),
        typed=typed,
        status_code=200 if refused is None else status_of(refused),
    )


def _back(request: Request, message: str) -> Response:
    return redirect(request, "/review", done=message)


@router.post("/review/{message_id}/opt-out", response_model=None)
def opt_out(request: Request, viewer: FormViewer, message_id: int) -> Response:
    with site_of(request).engine.begin() as db:
        done = review_queue.opt_out(
            db,
            workspace_id=viewer.workspace_id,
            message_id=message_id,
            actor=viewer.actor,
            now=utcnow(),
        )
    return _back(
        request,
        f"{done.email} is opted out; {done.enrollments_ended:,} enrollment(s) ended and "
        f"{done.emails_cancelled:,} queued email(s) cancelled.",
    )


@router.post("/review/{message_id}/dismiss", response_model=None)
def dismiss(request: Request, viewer: FormViewer, message_id: int) -> Response:
    with site_of(request).engine.begin() as db:
        review_queue.dismiss(
            db,
            workspace_id=viewer.workspace_id,
            message_id=message_id,
            actor=viewer.actor,
            now=utcnow(),
        )
    return _back(request, "Dismissed: nothing was changed.")


@router.post("/review/{message_id}/attach", response_model=None)
def attach(
    request: Request, viewer: FormViewer, message_id: int, email: Annotated[str, Form()] = ""
) -> Response:
    try:
        with site_of(request).engine.begin() as db:
            review_queue.attach(
                db,
                workspace_id=viewer.workspace_id,
                message_id=message_id,
                email=email,
                actor=viewer.actor,
                now=utcnow(),
            )
    except (InvalidInput, NotFound) as exc:
        # Each message has its own "Attach to" input: the error is about that one.
        exc.at(f"attach-{message_id}", "Attach to")
        return _review_page(request, viewer, refused=exc, typed=email)
    return _back(request, f"Attached to {email.strip()}; it shows in their history.")
