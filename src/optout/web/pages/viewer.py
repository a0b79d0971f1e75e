"""Who is looking at a page: the session cookie's principal, the session's CSRF token
(every form and htmx request sends it back) and the workspace's name. FastAPI
dependencies; a missing or expired session raises NotSignedIn, which the page route
turns into a trip to the sign-in page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from optout.clock import utcnow
from optout.services import workspaces
from optout.services.access import accounts
from optout.services.access.accounts import NotSignedIn, Principal
from optout.web.auth import SESSION_COOKIE, checked_form_principal
from optout.web.site import site_of


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    csrf: str
    workspace: str  # the workspace's display name

    @property
    def workspace_id(self) -> int:
        return self.principal.workspace_id

    @property
    def actor(self) -> str:
        return self.principal.actor


def viewer(request: Request) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise NotSignedIn("please sign in")
    with site_of(request).reading() as db:  # never waits behind a writer
        principal, csrf = accounts.session_principal(db, token=token, now=utcnow())
        workspace = workspaces.get_by_id(db, workspace_id=principal.workspace_id)
    return Viewer(principal, csrf, workspace.name)


async def form_viewer(request: Request) -> Viewer:
    """For a form POST (or an htmx request): the viewer, once the CSRF token matched."""
    await checked_form_principal(request)
    return await run_in_threadpool(viewer, request)


PageViewer = Annotated[Viewer, Depends(viewer)]
FormViewer = Annotated[Viewer, Depends(form_viewer)]
