"""The search box of every page: people by address or name, companies by domain or name
(`services.reads.search`). One result, or one exact address or domain: straight to its page;
otherwise a short list of what was found."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from optout.services.reads import search
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import PageViewer
from optout.web.site import site_of

router = page_router()


def page_of(found: search.Found) -> str:
    return f"/people/{found.id}" if found.kind == "person" else f"/companies/{found.id}"


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, viewer: PageViewer, q: str = "") -> Response:
    with site_of(request).reading() as db:
        found = search.find(db, workspace_id=viewer.workspace_id, text=q)
    target = search.destination(found)
    if target is not None:
        return redirect(request, page_of(target))
    return page(request, "search.html", viewer=viewer, q=q, found=found, limit=search.MAX_RESULTS)
