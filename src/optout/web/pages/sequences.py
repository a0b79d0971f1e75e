"""Sequence pages: the list; one sequence with its steps and pause / resume / archive
(R11); its Enrollments tab with a status filter and unenroll, of selected rows (R8) or
of every enrollment matching the filter as a background job (R10); its Not
enrolled tab, who the last automatic enrollment left out and why (R30)."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.db import tables as t
from optout.errors import InvalidInput
from optout.jobs import submit
from optout.services.enrollments import automatic_view, enrolling, refresh
from optout.services.reads import browse
from optout.services.sequences import definitions
from optout.services.sequences.definitions import Overview
from optout.web.pages import reads
from optout.web.pages.render import page, redirect, with_query
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

PAGE_SIZE = 100
# The Enrollments tab's status filter: its value, label and the statuses it selects.
FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "active": ("Active (not started or in progress)", t.ACTIVE_STATUSES),
    **{
        status: (status.replace("_", " ").capitalize(), (status,))
        for status in t.ENROLLMENT_STATUSES
    },
    "all": ("All", tuple(t.ENROLLMENT_STATUSES)),
}
TRANSITIONS = {"pause": "paused", "resume": "active", "archive": "archived"}


def _statuses(choice: str) -> tuple[str, ...]:
    if choice not in FILTERS:
        raise InvalidInput(f"unknown status filter {choice!r}")
    return FILTERS[choice][1]


def _overview(
    request: Request, viewer: Viewer, sequence_id: int
) -> tuple[Overview, dict[str, int]]:
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        view = definitions.overview(db, workspace_id=ws, name=name)
        counts = enrolling.count_by_status(db, workspace_id=ws, sequence_id=sequence_id)
    return view, counts


@router.get("/sequences", response_class=HTMLResponse)
def sequence_list(request: Request, viewer: PageViewer) -> HTMLResponse:
    with site_of(request).reading() as db:
        rows = reads.sequence_rows(db, workspace_id=viewer.workspace_id)
    return page(request, "sequences.html", viewer=viewer, rows=rows, active=t.ACTIVE_STATUSES)


@router.get("/sequences/{sequence_id}", response_class=HTMLResponse)
def sequence_steps(request: Request, viewer: PageViewer, sequence_id: int) -> HTMLResponse:
    view, counts = _overview(request, viewer, sequence_id)
    with site_of(request).reading() as db:
        auto = automatic_view.status(
            db, workspace_id=viewer.workspace_id, sequence_id=sequence_id, now=utcnow()
        )
    return page(
        request,
        "sequence_steps.html",
        viewer=viewer,
        seq=view,
        counts=counts,
        tab="steps",
        auto=auto,
    )


@router.post("/sequences/{sequence_id}/status", response_model=None)
def change_status(
    request: Request, viewer: FormViewer, sequence_id: int, action: Annotated[str, Form()]
) -> Response:
    """Pause, resume or archive: sends stop or restart, nobody is unenrolled (R11)."""
    if action not in TRANSITIONS:
        raise InvalidInput(f"unknown action {action!r}; use pause, resume or archive")
    ws = viewer.workspace_id
    with site_of(request).engine.begin() as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        definitions.set_status(
            db,
            workspace_id=ws,
            name=name,
            status=TRANSITIONS[action],
            actor=viewer.actor,
            now=utcnow(),
        )
    done = f"{name} is {TRANSITIONS[action]}. Nobody was unenrolled."
    return redirect(request, f"/sequences/{sequence_id}", done=done)


@router.get("/sequences/{sequence_id}/enrollments", response_class=HTMLResponse)
def enrollment_tab(
    request: Request,
    viewer: PageViewer,
    sequence_id: int,
    status: str = "active",
    sort: str = "",
    after: str = "",
    before: str = "",
) -> HTMLResponse:
    statuses = _statuses(status)
    view, counts = _overview(request, viewer, sequence_id)
    with site_of(request).reading() as db:
        found = browse.enrollments(
            db,
            workspace_id=viewer.workspace_id,
            sequence_id=sequence_id,
            statuses=list(statuses),
            sort=sort,
            after=after,
            before=before,
            limit=PAGE_SIZE,
        )
    removable = [s for s in statuses if s in t.ACTIVE_STATUSES]
    return page(
        request,
        "sequence_enrollments.html",
        viewer=viewer,
        seq=view,
        counts=counts,
        tab="enrollments",
        filters=FILTERS,
        status=status,
        found=found,
        total=sum(counts.get(s, 0) for s in statuses),
        sorts=browse.ENROLLMENT_SORTS,
        matching_removable=sum(counts.get(s, 0) for s in removable),
    )


@router.post("/sequences/{sequence_id}/unenroll", response_model=None)
def unenroll(
    request: Request,
    viewer: FormViewer,
    sequence_id: int,
    status: Annotated[str, Form()] = "active",
    scope: Annotated[str, Form()] = "selected",
    person_id: Annotated[list[int] | None, Form()] = None,
) -> Response:
    """Selected rows: `enrolling.unenroll` (R8), at once. Every enrollment matching the
    filter: a background job over its active statuses, set-based in chunks (R10), whose
    page shows the progress and the summary."""
    ws = viewer.workspace_id
    removable = [s for s in _statuses(status) if s in t.ACTIVE_STATUSES]
    with site_of(request).engine.begin() as db:
        definitions.spec(db, workspace_id=ws, sequence_id=sequence_id)  # NotFound elsewhere
        if scope == "matching":
            if not removable:
                raise InvalidInput("only active enrollments (not started, in progress) can go")
            job = submit.bulk_unenroll(
                db,
                workspace_id=ws,
                statuses=removable,
                sequence_id=sequence_id,
                actor=viewer.actor,
                now=utcnow(),
                reason="bulk unenroll from the Enrollments tab",
            )
            return redirect(request, f"/jobs/{job.id}")
        if person_id:
            removal = enrolling.unenroll(
                db,
                workspace_id=ws,
                sequence_id=sequence_id,
                person_ids=person_id,
                actor=viewer.actor,
                now=utcnow(),
            )
        else:
            raise InvalidInput("select the enrollments to unenroll first")
    done = (
        f"Unenrolled {removal.enrollments_ended:,} enrollment(s) and cancelled "
        f"{removal.emails_cancelled:,} queued email(s). This is not an opt-out."
    )
    return redirect(
        request, with_query(f"/sequences/{sequence_id}/enrollments", status=status), done=done
    )


@router.get("/sequences/{sequence_id}/not-enrolled", response_class=HTMLResponse)
def not_enrolled_tab(
    request: Request,
    viewer: PageViewer,
    sequence_id: int,
    page_number: Annotated[int, Query(alias="page")] = 1,
) -> HTMLResponse:
    number = max(1, page_number)
    view, counts = _overview(request, viewer, sequence_id)
    with site_of(request).reading() as db:
        rows = refresh.not_enrolled(
            db,
            workspace_id=viewer.workspace_id,
            sequence=view.name,
            limit=PAGE_SIZE + 1,
            offset=(number - 1) * PAGE_SIZE,
        )
        e = t.enrollments
        ran = bool(rows) or db.scalar(
            sa.select(sa.exists().where(e.c.sequence_id == sequence_id, e.c.source == "audience"))
        )
        auto = automatic_view.status(
            db, workspace_id=viewer.workspace_id, sequence_id=sequence_id, now=utcnow()
        )
        waiting = automatic_view.waiting(db, sequence_id=sequence_id) if auto.on else 0
    return page(
        request,
        "sequence_not_enrolled.html",
        viewer=viewer,
        seq=view,
        counts=counts,
        tab="not-enrolled",
        ran=ran,
        auto=auto,
        waiting=waiting,
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page_number=number,
    )


@router.post("/sequences/{sequence_id}/refresh", response_model=None)
def enroll_from_audience(request: Request, viewer: FormViewer, sequence_id: int) -> Response:
    """Enroll every eligible member of the audience now, and record who was left out."""
    ws = viewer.workspace_id
    with site_of(request).engine.begin() as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        done = refresh.refresh(db, workspace_id=ws, sequence=name, actor=viewer.actor, now=utcnow())
    message = (
        f"{done.members:,} in the audience: {done.enrolled:,} enrolled now, "
        f"{done.skipped:,} left out."
    )
    return redirect(request, f"/sequences/{sequence_id}/not-enrolled", done=message)
