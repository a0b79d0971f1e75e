"""Audience pages: the list with sizes, and one audience with every exclusion that
affects it and the ones it switches off, with switch off / on buttons (R16, R30)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.errors import Conflict, InvalidInput, NotFound
from optout.filters import to_text
from optout.services.sequences import audiences
from optout.web.pages import reads
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer
from optout.web.site import site_of

router = page_router()

MAX_SIZED = 50  # the list counts the members of this many audiences


@router.get("/audiences", response_class=HTMLResponse)
def audience_list(request: Request, viewer: PageViewer) -> HTMLResponse:
    now = utcnow()
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        rows = reads.audience_rows(db, workspace_id=ws)
        for row in rows[:MAX_SIZED]:
            spec = audiences.spec(db, workspace_id=ws, audience_id=row["id"])
            row["size"] = audiences.size(db, workspace_id=ws, audience=spec, now=now)
            row["filter_text"] = to_text(spec.filter) if spec.filter is not None else ""
            row["switched_off"] = len(spec.switched_off)
    return page(request, "audiences.html", viewer=viewer, rows=rows)


@router.get("/audiences/{audience_id}", response_class=HTMLResponse)
def audience_detail(request: Request, viewer: PageViewer, audience_id: int) -> HTMLResponse:
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        spec = audiences.spec(db, workspace_id=ws, audience_id=audience_id)
        size = audiences.size(db, workspace_id=ws, audience=spec, now=utcnow())
        affecting = audiences.affecting_exclusions(db, workspace_id=ws, audience=spec.name)
        feeds: list[dict[str, object]] = next(
            (
                r["sequences"]
                for r in reads.audience_rows(db, workspace_id=ws)
                if r["id"] == spec.id
            ),
            [],
        )
    return page(
        request,
        "audience.html",
        viewer=viewer,
        audience=spec,
        filter_text=to_text(spec.filter) if spec.filter is not None else "",
        size=size,
        affecting=affecting,
        switched_off=[a for a in affecting if a.state == "switched_off"],
        feeds=feeds,
    )


@router.post("/audiences/{audience_id}/switch", response_model=None)
def switch(
    request: Request,
    viewer: FormViewer,
    audience_id: int,
    exclusion: Annotated[str, Form()],
    to: Annotated[str, Form()],
) -> Response:
    """Switch one (not enforced) exclusion off or back on for this audience's enrollments."""
    ws = viewer.workspace_id
    if to not in ("off", "on"):
        raise InvalidInput("switch an exclusion 'off' or 'on'")
    back = f"/audiences/{audience_id}"
    try:
        with site_of(request).engine.begin() as db:
            spec = audiences.spec(db, workspace_id=ws, audience_id=audience_id)
            change = audiences.switch_off if to == "off" else audiences.switch_on
            change(
                db,
                workspace_id=ws,
                audience=spec.name,
                exclusion=exclusion,
                actor=viewer.actor,
                now=utcnow(),
            )
    except (Conflict, NotFound) as exc:
        return redirect(request, back, problem=exc.message)
    return redirect(request, back, done=f"{exclusion} switched {to}")
