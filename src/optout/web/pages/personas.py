"""Persona pages: the list, and the create and edit form (title words to include and to
exclude) with a live count of who matches, and the audiences and sequences that use the
persona (R24)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound, OptoutError
from optout.services.reads import listing
from optout.services.sequences import audiences, personas
from optout.web.pages import reads
from optout.web.pages.form_error import form_error
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

_WORD_SEPARATORS = re.compile(r"[,\n]+")


def words(text: str) -> list[str]:
    """Keywords as typed: separated by commas or lines (a keyword may hold spaces)."""
    return [word.strip() for word in _WORD_SEPARATORS.split(text) if word.strip()]


@router.get("/personas", response_class=HTMLResponse)
def persona_list(request: Request, viewer: PageViewer) -> HTMLResponse:
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        rows = []
        for row in listing.rows(db, t.personas, workspace_id=ws, limit=1000, offset=0).rows:
            used_by, fed = reads.users_of_persona(db, workspace_id=ws, persona_id=row["id"])
            rows.append({**row, "audiences": used_by, "sequences": fed})
    return page(request, "personas.html", viewer=viewer, rows=rows)


def _form_page(
    request: Request,
    viewer: Viewer,
    *,
    persona_id: int | None,
    name: str,
    include: str,
    exclude: str,
    error: OptoutError | None = None,
) -> HTMLResponse:
    used_by: list[object] = []
    fed: list[object] = []
    if persona_id is not None:
        with site_of(request).reading() as db:
            used_by, fed = reads.users_of_persona(
                db, workspace_id=viewer.workspace_id, persona_id=persona_id
            )
    status = 200
    if error is not None:
        status = 409 if isinstance(error, Conflict) else 404 if isinstance(error, NotFound) else 422
    return page(
        request,
        "persona_form.html",
        status_code=status,
        viewer=viewer,
        persona_id=persona_id,
        form={"name": name, "include": include, "exclude": exclude},
        audiences=used_by,
        sequences=fed,
        error=form_error(error),
    )


@router.get("/personas/new", response_class=HTMLResponse)
def new_persona(request: Request, viewer: PageViewer) -> HTMLResponse:
    return _form_page(request, viewer, persona_id=None, name="", include="", exclude="")


@router.post("/personas/new", response_model=None)
def create_persona(
    request: Request,
    viewer: FormViewer,
    name: Annotated[str, Form()] = "",
    include: Annotated[str, Form()] = "",
    exclude: Annotated[str, Form()] = "",
) -> Response:
    try:
        with site_of(request).engine.begin() as db:
            persona_id = personas.create(
                db,
                workspace_id=viewer.workspace_id,
                name=name,
                include_keywords=words(include),
                exclude_keywords=words(exclude),
                now=utcnow(),
            )
    except (InvalidInput, Conflict) as exc:
        return _form_page(
            request,
            viewer,
            persona_id=None,
            name=name,
            include=include,
            exclude=exclude,
            error=exc,
        )
    return redirect(request, f"/personas/{persona_id}", done=f"Created {name.strip()}.")


@router.post("/personas/count", response_class=HTMLResponse)
def count(
    request: Request,
    viewer: FormViewer,
    include: Annotated[str, Form()] = "",
    exclude: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """How many people's titles fit the keywords as typed (htmx, as they change)."""
    fragment = "fragments/people_count.html"
    ws = viewer.workspace_id
    try:
        draft = audiences.of_keywords(
            include_keywords=words(include), exclude_keywords=words(exclude)
        )
    except InvalidInput as exc:
        return page(request, fragment, count=None, error=exc.message, where="")
    with site_of(request).reading() as db:
        size = audiences.size(db, workspace_id=ws, audience=draft, now=utcnow())
        total = reads.totals(db, workspace_id=ws)["people"]
    return page(request, fragment, count=size, total=total, error="", where="")


@router.get("/personas/{persona_id}", response_class=HTMLResponse)
def edit_persona(request: Request, viewer: PageViewer, persona_id: int) -> HTMLResponse:
    with site_of(request).reading() as db:
        found = personas.get(db, workspace_id=viewer.workspace_id, persona_id=persona_id)
    return _form_page(
        request,
        viewer,
        persona_id=found.id,
        name=found.name,
        include="\n".join(found.include_keywords),
        exclude="\n".join(found.exclude_keywords),
    )


@router.post("/personas/{persona_id}", response_model=None)
def save_persona(
    request: Request,
    viewer: FormViewer,
    persona_id: int,
    name: Annotated[str, Form()] = "",
    include: Annotated[str, Form()] = "",
    exclude: Annotated[str, Form()] = "",
) -> Response:
    try:
        with site_of(request).engine.begin() as db:
            saved = personas.update(
                db,
                workspace_id=viewer.workspace_id,
                persona_id=persona_id,
                name=name,
                include_keywords=words(include),
                exclude_keywords=words(exclude),
                actor=viewer.actor,
                now=utcnow(),
            )
    except (InvalidInput, Conflict) as exc:
        return _form_page(
            request,
            viewer,
            persona_id=persona_id,
            name=name,
            include=include,
            exclude=exclude,
            error=exc,
        )
    return redirect(request, f"/personas/{persona_id}", done=f"Saved {saved.name}.")
