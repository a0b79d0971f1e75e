"""Company pages: the list, a page at a time in a few orders, and one company with its
people (`services.reads.browse`)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from optout.services.directory import companies
from optout.services.reads import browse
from optout.web.pages.render import page
from optout.web.pages.route import page_router
from optout.web.pages.viewer import PageViewer
from optout.web.site import site_of

router = page_router()


@router.get("/companies", response_class=HTMLResponse)
def company_list(
    request: Request, viewer: PageViewer, sort: str = "", after: str = "", before: str = ""
) -> HTMLResponse:
    with site_of(request).reading() as db:
        result = browse.companies(
            db, workspace_id=viewer.workspace_id, sort=sort, after=after, before=before
        )
    return page(request, "companies.html", viewer=viewer, result=result, sorts=browse.COMPANY_SORTS)


@router.get("/companies/{company_id}", response_class=HTMLResponse)
def company_page(
    request: Request,
    viewer: PageViewer,
    company_id: int,
    sort: str = "",
    after: str = "",
    before: str = "",
) -> HTMLResponse:
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        company = companies.get(db, workspace_id=ws, company_id=company_id)
        parent = (
            companies.get(db, workspace_id=ws, company_id=company["parent_id"])
            if company["parent_id"] is not None
            else None
        )
        result = browse.people(
            db, workspace_id=ws, company_id=company_id, sort=sort, after=after, before=before
        )
    return page(
        request,
        "company.html",
        viewer=viewer,
        company=company,
        parent=parent,
        result=result,
        sorts=browse.PEOPLE_SORTS,
        base=f"/companies/{company_id}",
    )
