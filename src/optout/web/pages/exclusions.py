"""Exclusion pages: the list, the create and edit form with its filter builder and live
impact preview (R18, R22), and the mass-exclusion confirmation before a save (R22).
A save with unenroll-on-save removes the matching enrollments in its own transaction
(R13)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from optout.clock import utcnow
from optout.errors import (
    ConfirmationRequired,
    Conflict,
    InvalidFilter,
    InvalidInput,
    NotFound,
    OptoutError,
)
from optout.jobs import submit
from optout.services import decision_index, exclusion_rules
from optout.services.exclusions import in_sequences, saves
from optout.services.exclusions.preview import Preview, preview
from optout.services.exclusions.saves import Saved
from optout.services.reads import browse
from optout.web.pages import reads
from optout.web.pages.exclusion_form import (
    ExclusionForm,
    condition_text,
    form_context,
    posted_form,
    with_condition,
)
from optout.web.pages.form_error import FormError, form_error
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

PostedForm = Annotated[ExclusionForm, Depends(posted_form)]


@router.get("/exclusions", response_class=HTMLResponse)
def exclusion_list(
    request: Request,
    viewer: PageViewer,
    archived: bool = False,
    sort: str = "",
    after: str = "",
    before: str = "",
) -> HTMLResponse:
    """The exclusions in use (or the archived ones), a page at a time, each with the
    number of people it matches now."""
    now = utcnow()
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        decision_index.flush(db)
        decision_index.hold(db, workspace_id=ws)
        result = browse.exclusions(
            db, workspace_id=ws, archived=archived, sort=sort, after=after, before=before
        )
        specs = [exclusion_rules.spec_from_row(row) for row in result.rows]
        matched = {
            spec.id: reads.people_matched(db, workspace_id=ws, exclusion=spec, now=now)
            for spec in specs
        }
        total = reads.totals(db, workspace_id=ws)["people"]
        bypassing = in_sequences.bypassing_sequences(db, workspace_id=ws)
    return page(
        request,
        "exclusions.html",
        viewer=viewer,
        rows=[(spec, ExclusionForm.of(spec).filter, matched.get(spec.id)) for spec in specs],
        people_total=total,
        bypassing=bypassing,
        result=result,
        sorts=browse.EXCLUSION_SORTS,
        params={"archived": "1"} if archived else {},
        archived=archived,
    )


@router.get("/exclusions/new", response_class=HTMLResponse)
def new_exclusion(request: Request, viewer: PageViewer) -> HTMLResponse:
    return page(
        request,
        "exclusion_form.html",
        viewer=viewer,
        **form_context(ExclusionForm(), exclusion_id=None, error="", confirmation=None),
    )


@router.post("/exclusions/new", response_model=None)
def create_exclusion(
    request: Request,
    viewer: FormViewer,
    form: PostedForm,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    return _save(request, viewer, form, exclusion_id=None, confirm=confirm == "yes")


@router.post("/exclusions/preview", response_class=HTMLResponse)
def preview_fragment(
    request: Request,
    viewer: FormViewer,
    form: PostedForm,
    exclusion_id: Annotated[int, Form()] = 0,
) -> HTMLResponse:
    """The live impact of the form as it stands (htmx, on every change): nothing is saved."""
    if not form.filter:
        return page(request, "fragments/preview.html", impact=None, error="", where="")
    try:
        draft = form.draft(exclusion_id)
    except InvalidInput as exc:
        where, error = _explained(exc)
        return page(request, "fragments/preview.html", impact=None, error=error, where=where)
    with site_of(request).reading() as db:
        impact = preview(db, workspace_id=viewer.workspace_id, exclusion=draft, now=utcnow())
    return page(request, "fragments/preview.html", impact=impact, error="", where="", spec=draft)


@router.post("/exclusions/condition", response_class=HTMLResponse)
def add_condition(
    request: Request,
    viewer: FormViewer,
    form: PostedForm,
    builder_field: Annotated[str, Form()] = "",
    builder_op: Annotated[str, Form()] = "",
    builder_value: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """The filter text with one more condition from the builder (htmx), and the builder's
    error line out of band; the form's preview is told to refresh."""
    try:
        addition = condition_text(builder_field, builder_op, builder_value)
    except InvalidInput as exc:
        return page(
            request,
            "fragments/filter_added.html",
            form=form,
            builder_error=exc.message,
            swap_oob=True,
        )
    updated = dataclasses.replace(form, filter=with_condition(form.filter, addition))
    response = page(
        request, "fragments/filter_added.html", form=updated, builder_error="", swap_oob=True
    )
    response.headers["HX-Trigger-After-Swap"] = "filter-changed"
    return response


@router.get("/exclusions/{exclusion_id}", response_class=HTMLResponse)
def edit_exclusion(
    request: Request,
    viewer: PageViewer,
    exclusion_id: int,
    saved: str = "",
    ended: int = 0,
    cancelled: int = 0,
) -> HTMLResponse:
    with site_of(request).reading() as db:
        spec = saves.get_by_id(db, workspace_id=viewer.workspace_id, exclusion_id=exclusion_id)
        archived = saves.is_archived(db, exclusion_id=spec.id)
        reach = None if archived else _reach(db, viewer.workspace_id, spec.id)
    return page(
        request,
        "exclusion_form.html",
        viewer=viewer,
        archived=archived,
        saved=saved,
        ended=ended,
        cancelled=cancelled,
        reach=reach,
        **form_context(ExclusionForm.of(spec), exclusion_id=spec.id, error="", confirmation=None),
    )


@router.post("/exclusions/{exclusion_id}", response_model=None)
def update_exclusion(
    request: Request,
    viewer: FormViewer,
    exclusion_id: int,
    form: PostedForm,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    return _save(request, viewer, form, exclusion_id=exclusion_id, confirm=confirm == "yes")


def _save(
    request: Request,
    viewer: Viewer,
    form: ExclusionForm,
    *,
    exclusion_id: int | None,
    confirm: bool,
) -> Response:
    """One save in one transaction. When it needs confirmation (R22), nothing is saved and
    the form comes back with the impact and a "Save anyway" button."""
    engine = site_of(request).engine
    now = utcnow()
    ws = viewer.workspace_id
    try:
        with engine.begin() as db:
            if confirm and form.enabled and form.unenroll_existing_on_save:
                # Confirmed because it unenrolls many (R22): the save and its unenroll run
                # as a background job, and its page shows the progress and the result.
                job = submit.exclusion_save(
                    db,
                    workspace_id=ws,
                    exclusion_id=exclusion_id,
                    name=form.name,
                    level=form.level,
                    filter=form.filter,
                    enabled=form.enabled,
                    exclude_from_sequences=form.exclude_from_sequences,
                    unenroll_existing_on_save=form.unenroll_existing_on_save,
                    actor=viewer.actor,
                    now=now,
                )
                return redirect(request, f"/jobs/{job.id}")
            saved = _write(db, ws, viewer.actor, form, exclusion_id, confirm, now)
    except ConfirmationRequired as exc:
        with engine.connect() as db:
            impact = exc.preview
            if not isinstance(impact, Preview):
                draft = form.draft(exclusion_id or 0)
                impact = preview(db, workspace_id=ws, exclusion=draft, now=now)
            reach = _reach(db, ws, exclusion_id) if exclusion_id else None
        return page(
            request,
            "exclusion_form.html",
            viewer=viewer,
            reach=reach,
            **form_context(
                form,
                exclusion_id=exclusion_id,
                error="",
                confirmation={"message": exc.message, "preview": impact},
            ),
        )
    except (InvalidInput, Conflict, NotFound) as exc:
        where, error = _explained(exc)
        return page(
            request,
            "exclusion_form.html",
            status_code=409 if isinstance(exc, Conflict) else 422,
            viewer=viewer,
            **form_context(
                form, exclusion_id=exclusion_id, error=error, where=where, confirmation=None
            ),
        )
    removal = saved.removal
    return redirect(
        request,
        f"/exclusions/{saved.exclusion.id}?saved={'updated' if exclusion_id else 'created'}"
        f"&ended={removal.enrollments_ended}&cancelled={removal.emails_cancelled}",
    )


def _reach(db: Connection, ws: int, exclusion_id: int) -> in_sequences.Reach:
    """Where the saved rule applies now, sequence by sequence (R16)."""
    spec = saves.get_by_id(db, workspace_id=ws, exclusion_id=exclusion_id)
    return in_sequences.reach_of(db, workspace_id=ws, exclusion=spec)


def _explained(error: OptoutError) -> tuple[str, FormError]:
    """Where a bad filter is wrong (if it says) and why, apart; other errors: why, and
    the input they are about."""
    if isinstance(error, InvalidFilter) and error.where:
        return error.where, FormError(error.reason)
    return "", form_error(error)


def _write(
    db: Connection,
    ws: int,
    actor: str,
    form: ExclusionForm,
    exclusion_id: int | None,
    confirm: bool,
    now: datetime,
) -> Saved:
    if exclusion_id is None:
        return saves.create(
            db,
            workspace_id=ws,
            name=form.name,
            level=form.level,
            filter=form.filter,
            actor=actor,
            now=now,
            enabled=form.enabled,
            exclude_from_sequences=form.exclude_from_sequences,
            unenroll_existing_on_save=form.unenroll_existing_on_save,
            confirm=confirm,
        )
    current = saves.get_by_id(db, workspace_id=ws, exclusion_id=exclusion_id)
    return saves.update(
        db,
        workspace_id=ws,
        name=current.name,
        actor=actor,
        now=now,
        new_name=form.name or None,
        level=form.level,
        filter=form.filter,
        enabled=form.enabled,
        exclude_from_sequences=form.exclude_from_sequences,
        unenroll_existing_on_save=form.unenroll_existing_on_save,
        confirm=confirm,
    )
