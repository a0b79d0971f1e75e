"""The invitations page: the workspaces that invited the signed-in user, to accept or
decline. Accepting makes them a member with the invited role; they then sign in to that
workspace from the sign-in page."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.services.access import invitations
from optout.services.access.accounts import NotSignedIn
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()


@router.get("/invitations", response_class=HTMLResponse)
def invitations_page(request: Request, viewer: PageViewer) -> HTMLResponse:
    with site_of(request).reading() as db:
        waiting = invitations.received(db, user_id=_user(viewer))
    return page(request, "invitations.html", viewer=viewer, invitations=waiting)


@router.post("/invitations/{invitation_id}/accept", response_model=None)
def accept(request: Request, viewer: FormViewer, invitation_id: int) -> Response:
    with site_of(request).engine.begin() as db:
        done = invitations.accept(
            db, user_id=_user(viewer), invitation_id=invitation_id, now=utcnow()
        )
    return redirect(
        request,
        "/invitations",
        done=f"You are now {_a(done.role.value)} of {done.workspace_name}: sign out and sign "
        f"in with workspace {done.workspace_slug!r} to work there.",
    )


@router.post("/invitations/{invitation_id}/decline", response_model=None)
def decline(request: Request, viewer: FormViewer, invitation_id: int) -> Response:
    with site_of(request).engine.begin() as db:
        done = invitations.decline(
            db, user_id=_user(viewer), invitation_id=invitation_id, now=utcnow()
        )
    return redirect(
        request, "/invitations", done=f"You declined the invitation of {done.workspace_name}."
    )


def _user(viewer: Viewer) -> int:
    if viewer.principal.user_id is None:
        raise NotSignedIn("please sign in")
    return viewer.principal.user_id


def _a(role: str) -> str:
    return f"an {role}" if role == "admin" else f"a {role}"
