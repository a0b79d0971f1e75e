"""An exclusion's own pages besides its form: everyone it matches (a page at a time, or
as a CSV download), its change history (R35), and retiring it: archive, restore, and
delete after the same impact preview and confirmation as a save (R22)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from optout.clock import utcnow
from optout.db import tables as t
from optout.errors import ConfirmationRequired
from optout.services.exclusions import archive, history, matches, saves
from optout.services.reads import listing
from optout.web.pages.render import PAGE_HEADERS, page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()


@router.get("/exclusions/{exclusion_id}/matches", response_class=HTMLResponse)
def match_list(
    request: Request,
    viewer: PageViewer,
    exclusion_id: int,
    sort: str = "",
    after: str = "",
    before: str = "",
) -> HTMLResponse:
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        spec = saves.get_by_id(db, workspace_id=ws, exclusion_id=exclusion_id)
        result = matches.page(
            db,
            workspace_id=ws,
            exclusion_id=exclusion_id,
            now=utcnow(),
            sort=sort,
            after=after,
            before=before,
        )
    return page(
        request,
        "exclusion_matches.html",
        viewer=viewer,
        spec=spec,
        result=result,
        sorts=matches.MATCH_SORTS,
        base=f"/exclusions/{exclusion_id}/matches",
    )


@router.get("/exclusions/{exclusion_id}/matches.csv", response_model=None)
def match_csv(request: Request, viewer: PageViewer, exclusion_id: int) -> Response:
    """Everyone the exclusion matches, streamed as CSV as it is read."""
    lines = matches.csv_lines(
        site_of(request).engine,
        workspace_id=viewer.workspace_id,
        exclusion_id=exclusion_id,
        now=utcnow(),
    )
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={
            **PAGE_HEADERS,
            "Content-Disposition": f'attachment; filename="exclusion-{exclusion_id}-matches.csv"',
        },
    )


@router.get("/exclusions/{exclusion_id}/history", response_class=HTMLResponse)
def history_page(request: Request, viewer: PageViewer, exclusion_id: int) -> HTMLResponse:
    """The history outlives the exclusion: a deleted one's ends with its deletion."""
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        changes = history.history(db, workspace_id=ws, exclusion_id=exclusion_id)
        exists = bool(listing.names_by_id(db, t.exclusions, workspace_id=ws, ids=[exclusion_id]))
        if not changes and not exists:
            saves.get_by_id(db, workspace_id=ws, exclusion_id=exclusion_id)  # NotFound
    return page(
        request,
        "exclusion_history.html",
        viewer=viewer,
        exclusion_id=exclusion_id,
        rule_name=changes[-1].name if changes else "",
        exists=exists,
        changes=changes,
    )


def _confirm_page(
    request: Request, viewer: Viewer, exclusion_id: int, action: str, message: str
) -> HTMLResponse:
    with site_of(request).reading() as db:
        spec, impact = archive.impact_now(
            db, workspace_id=viewer.workspace_id, exclusion_id=exclusion_id, now=utcnow()
        )
    return page(
        request,
        "exclusion_confirm.html",
        status_code=200 if action == "delete" else 409,
        viewer=viewer,
        spec=spec,
        impact=impact,
        action=action,
        message=message,
    )


@router.get("/exclusions/{exclusion_id}/delete", response_class=HTMLResponse)
def delete_page(request: Request, viewer: PageViewer, exclusion_id: int) -> HTMLResponse:
    """What deleting the exclusion changes, before anything is deleted."""
    return _confirm_page(request, viewer, exclusion_id, "delete", "")


@router.post("/exclusions/{exclusion_id}/delete", response_model=None)
def delete(
    request: Request,
    viewer: FormViewer,
    exclusion_id: int,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    try:
        with site_of(request).engine.begin() as db:
            spec = archive.delete(
                db,
                workspace_id=viewer.workspace_id,
                exclusion_id=exclusion_id,
                actor=viewer.actor,
                now=utcnow(),
                confirm=confirm == "yes",
            )
    except ConfirmationRequired as exc:
        return _confirm_page(request, viewer, exclusion_id, "delete", exc.message)
    return redirect(request, "/exclusions", done=f"Deleted {spec.name}.")


@router.post("/exclusions/{exclusion_id}/archive", response_model=None)
def archive_exclusion(request: Request, viewer: FormViewer, exclusion_id: int) -> Response:
    with site_of(request).engine.begin() as db:
        spec = archive.archive(
            db,
            workspace_id=viewer.workspace_id,
            exclusion_id=exclusion_id,
            actor=viewer.actor,
            now=utcnow(),
        )
    done = f"Archived {spec.name}: it applies nowhere until it is restored."
    return redirect(request, "/exclusions", done=done)


@router.post("/exclusions/{exclusion_id}/restore", response_model=None)
def restore(
    request: Request,
    viewer: FormViewer,
    exclusion_id: int,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    try:
        with site_of(request).engine.begin() as db:
            restored = archive.restore(
                db,
                workspace_id=viewer.workspace_id,
                exclusion_id=exclusion_id,
                actor=viewer.actor,
                now=utcnow(),
                confirm=confirm == "yes",
            )
    except ConfirmationRequired as exc:
        return _confirm_page(request, viewer, exclusion_id, "restore", exc.message)
    removal = restored.removal
    return redirect(
        request,
        f"/exclusions/{exclusion_id}?saved=restored"
        f"&ended={removal.enrollments_ended}&cancelled={removal.emails_cancelled}",
    )
