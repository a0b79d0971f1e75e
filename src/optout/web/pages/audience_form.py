"""Creating and editing an audience in the browser: name, a people filter written with
the exclusion form's filter builder, a persona, and a live count of its members. Which
exclusions it switches off is set on the audience's own page (R16, R24, R30)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.db import tables as t
from optout.errors import Conflict, InvalidFilter, InvalidInput, NotFound, OptoutError
from optout.filters import to_text
from optout.services.reads import listing
from optout.services.sequences import audiences
from optout.web.pages import reads
from optout.web.pages.exclusion_form import field_groups, operator_choices
from optout.web.pages.form_error import FormError
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()


def _form_page(
    request: Request,
    viewer: Viewer,
    *,
    audience_id: int | None,
    name: str,
    filter: str,
    persona: str,
    error: OptoutError | None = None,
) -> HTMLResponse:
    with site_of(request).reading() as db:
        names = [
            r["name"]
            for r in listing.rows(
                db, t.personas, workspace_id=viewer.workspace_id, limit=1000, offset=0
            ).rows
        ]
    where, message = "", ""
    if isinstance(error, InvalidFilter):
        where, message = error.where, error.reason
    elif error is not None:
        message = error.message
    status = 200
    if error is not None:
        status = 409 if isinstance(error, Conflict) else 404 if isinstance(error, NotFound) else 422
    return page(
        request,
        "audience_form.html",
        status_code=status,
        viewer=viewer,
        audience_id=audience_id,
        form={"name": name, "filter": filter, "persona": persona},
        personas=names,
        error=FormError(message, error.field if error is not None else ""),
        where=where,
        field_groups=field_groups(),
        operators=operator_choices(),
    )


@router.get("/audiences/new", response_class=HTMLResponse)
def new_audience(request: Request, viewer: PageViewer) -> HTMLResponse:
    return _form_page(request, viewer, audience_id=None, name="", filter="", persona="")


@router.post("/audiences/new", response_model=None)
def create_audience(
    request: Request,
    viewer: FormViewer,
    name: Annotated[str, Form()] = "",
    filter: Annotated[str, Form()] = "",
    persona: Annotated[str, Form()] = "",
) -> Response:
    try:
        with site_of(request).engine.begin() as db:
            audience_id = audiences.create(
                db,
                workspace_id=viewer.workspace_id,
                name=name,
                filter=filter.strip() or None,
                persona=persona or None,
                now=utcnow(),
            )
    except (InvalidInput, Conflict, NotFound) as exc:
        return _form_page(
            request, viewer, audience_id=None, name=name, filter=filter, persona=persona, error=exc
        )
    return redirect(request, f"/audiences/{audience_id}", done=f"Created {name.strip()}")


@router.post("/audiences/count", response_class=HTMLResponse)
def count(
    request: Request,
    viewer: FormViewer,
    filter: Annotated[str, Form()] = "",
    persona: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """How many people the audience the form describes holds now (htmx, as it changes)."""
    fragment = "fragments/people_count.html"
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        try:
            draft = audiences.draft(
                db, workspace_id=ws, filter=filter.strip() or None, persona=persona or None
            )
        except InvalidFilter as exc:
            return page(request, fragment, count=None, error=exc.reason, where=exc.where)
        except (InvalidInput, NotFound) as exc:
            return page(request, fragment, count=None, error=exc.message, where="")
        size = audiences.size(db, workspace_id=ws, audience=draft, now=utcnow())
        total = reads.totals(db, workspace_id=ws)["people"]
    return page(request, fragment, count=size, total=total, error="", where="")


@router.get("/audiences/{audience_id}/edit", response_class=HTMLResponse)
def edit_audience(request: Request, viewer: PageViewer, audience_id: int) -> HTMLResponse:
    with site_of(request).reading() as db:
        spec = audiences.spec(db, workspace_id=viewer.workspace_id, audience_id=audience_id)
    return _form_page(
        request,
        viewer,
        audience_id=spec.id,
        name=spec.name,
        filter=to_text(spec.filter) if spec.filter is not None else "",
        persona=spec.persona_name or "",
    )


@router.post("/audiences/{audience_id}/edit", response_model=None)
def save_audience(
    request: Request,
    viewer: FormViewer,
    audience_id: int,
    name: Annotated[str, Form()] = "",
    filter: Annotated[str, Form()] = "",
    persona: Annotated[str, Form()] = "",
) -> Response:
    values: dict[str, Any] = {"name": name, "filter": filter, "persona": persona}
    try:
        with site_of(request).engine.begin() as db:
            saved = audiences.update(
                db,
                workspace_id=viewer.workspace_id,
                audience_id=audience_id,
                name=name,
                filter=filter.strip() or None,
                persona=persona or None,
                actor=viewer.actor,
                now=utcnow(),
            )
    except (InvalidInput, Conflict, NotFound) as exc:
        return _form_page(request, viewer, audience_id=audience_id, error=exc, **values)
    return redirect(request, f"/audiences/{audience_id}", done=f"Saved {saved.name}")
