"""A sequence's Enroll tab: enroll one person, a pasted list of addresses, or everyone a
filter matches (with the exclusion form's filter builder and a live count), then see how
many were enrolled and, for each one who was not, why (R17, R29)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Form, Request
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.errors import InvalidFilter, InvalidInput
from optout.services.enrollments import by_hand, enrolling
from optout.services.enrollments.by_hand import Report
from optout.services.reads import listing
from optout.services.sequences import definitions
from optout.services.sequences.definitions import Overview
from optout.web.pages.exclusion_form import field_groups, operator_choices
from optout.web.pages.render import page
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

MODES = ("person", "list", "filter")


def _tab(
    request: Request,
    viewer: Viewer,
    sequence_id: int,
    *,
    status_code: int = 200,
    mode: str = "",
    report: Report | None = None,
    error: str = "",
    where: str = "",
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
        view: Overview = definitions.overview(db, workspace_id=ws, name=name)
        counts = enrolling.count_by_status(db, workspace_id=ws, sequence_id=sequence_id)
    given = {"address": "", "addresses": "", "filter": "", **(values or {})}
    return page(
        request,
        "sequence_enroll.html",
        status_code=status_code,
        viewer=viewer,
        seq=view,
        counts=counts,
        tab="enroll",
        done="",
        mode=mode,
        report=report,
        error=error,
        where=where,
        values=given,
        form={"filter": given["filter"]},
        field_groups=field_groups(),
        operators=operator_choices(),
    )


@router.get("/sequences/{sequence_id}/enroll", response_class=HTMLResponse)
def enroll_tab(request: Request, viewer: PageViewer, sequence_id: int) -> HTMLResponse:
    return _tab(request, viewer, sequence_id)


@router.post("/sequences/{sequence_id}/enroll", response_class=HTMLResponse)
def enroll(
    request: Request,
    viewer: FormViewer,
    sequence_id: int,
    mode: Annotated[str, Form()],
    address: Annotated[str, Form()] = "",
    addresses: Annotated[str, Form()] = "",
    filter: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Enroll the eligible among the people named one of three ways; report the rest."""
    if mode not in MODES:
        raise InvalidInput("enroll one person, a list of addresses or a filter")
    values = {"address": address, "addresses": addresses, "filter": filter}
    ws, now = viewer.workspace_id, utcnow()
    try:
        with site_of(request).engine.begin() as db:
            target = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id)
            common: dict[str, Any] = {
                "workspace_id": ws,
                "sequence_id": target.id,
                "actor": viewer.actor,
                "now": now,
            }
            if mode == "filter":
                report = by_hand.enroll_filter(db, filter=filter, **common)
            else:
                text = address if mode == "person" else addresses
                if mode == "person" and not text.strip():
                    raise InvalidInput("give the person's email address")
                report = by_hand.enroll_addresses(db, text=text, **common)
    except InvalidFilter as exc:
        return _tab(
            request,
            viewer,
            sequence_id,
            status_code=422,
            mode=mode,
            error=exc.reason,
            where=exc.where,
            values=values,
        )
    except InvalidInput as exc:
        return _tab(
            request,
            viewer,
            sequence_id,
            status_code=422,
            mode=mode,
            error=exc.message,
            values=values,
        )
    return _tab(request, viewer, sequence_id, mode=mode, report=report, values=values)


@router.post("/sequences/{sequence_id}/enroll-count", response_class=HTMLResponse)
def enroll_count(
    request: Request,
    viewer: FormViewer,
    sequence_id: int,
    filter: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """How many people the filter matches now (htmx, as it is written)."""
    fragment = "fragments/people_count.html"
    if not filter.strip():
        return page(request, fragment, count=None, error="", where="")
    try:
        chosen = listing.matching_people(
            workspace_id=viewer.workspace_id, filter=filter, now=utcnow()
        )
    except InvalidFilter as exc:
        return page(request, fragment, count=None, error=exc.reason, where=exc.where)
    with site_of(request).reading() as db:
        definitions.spec(db, workspace_id=viewer.workspace_id, sequence_id=sequence_id)
        count = int(db.scalar(sa.select(sa.func.count()).select_from(chosen.subquery())) or 0)
    return page(request, fragment, count=count, error="", where="")
