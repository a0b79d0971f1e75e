"""The mailboxes' capacity page: for each mailbox, today's sends against its limit in its
own day, what is queued for it (due now and later), whether it is paused and why, and
the day its present queue will have drained at these limits, with the pace assumed
(R37, R40)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.sending import drain
from optout.web.pages.render import page
from optout.web.pages.route import page_router
from optout.web.pages.viewer import PageViewer
from optout.web.site import site_of

router = page_router()


@router.get("/mailboxes/capacity", response_class=HTMLResponse)
def capacity_page(request: Request, viewer: PageViewer) -> HTMLResponse:
    with site_of(request).reading() as db:
        found = drain.forecast(db, workspace_id=viewer.workspace_id, now=utcnow())
    return page(
        request,
        "mailbox_capacity.html",
        viewer=viewer,
        rows=found.mailboxes,
        totals=found.totals,
    )
