"""Ruleset pages: the list, and the create and edit form (exclusions on or off,
re-enrollment cooldown, company cap) with the sequences that use the ruleset. Anyone
signed in may read them; as in the JSON API, only an admin may create or change one
(R9, R16, R27)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.db import tables as t
from optout.errors import ConfirmationRequired, Conflict, InvalidInput, NotFound, OptoutError
from optout.services import fresh_rules
from optout.services.access.accounts import Role
from optout.services.reads import listing
from optout.services.sequences import rulesets
from optout.web.pages import reads
from optout.web.pages.form_error import form_error
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()


def _whole(text: str, *, field: str, label: str, accepted: str) -> int | None:
    """A whole number typed in a field; empty: None."""
    if not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(f"{text.strip()!r} is not a whole number: {accepted}", value=text).at(
            field, label
        ) from None


def _settings(name: str, exclusions_enabled: str | None, cooldown: str, cap: str) -> dict[str, Any]:
    return {
        "name": name,
        "exclusions_enabled": exclusions_enabled is not None,
        "reenroll_cooldown_days": _whole(
            cooldown,
            field="reenroll_cooldown_days",
            label="Re-enrollment cooldown",
            accepted="type a number of days, 0 or more",
        )
        or 0,
        "max_active_per_company": _whole(
            cap,
            field="max_active_per_company",
            label="Cap per company",
            accepted="type a number of people, 1 or more, or leave it empty for no cap",
        ),
    }


@router.get("/rulesets", response_class=HTMLResponse)
def ruleset_list(request: Request, viewer: PageViewer) -> HTMLResponse:
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        rows = [
            {
                **row,
                "sequences": reads.sequences_of_ruleset(db, workspace_id=ws, ruleset_id=row["id"]),
            }
            for row in listing.rows(db, t.rulesets, workspace_id=ws, limit=1000, offset=0).rows
        ]
    return page(
        request,
        "rulesets.html",
        viewer=viewer,
        rows=rows,
        is_admin=viewer.principal.role is Role.ADMIN,
    )


def _form_page(
    request: Request,
    viewer: Viewer,
    *,
    ruleset_id: int | None,
    form: dict[str, Any],
    error: OptoutError | None = None,
) -> HTMLResponse:
    used_by: list[Any] = []
    ignored: list[Any] = []
    if ruleset_id is not None:
        ws = viewer.workspace_id
        with site_of(request).reading() as db:
            used_by = reads.sequences_of_ruleset(db, workspace_id=ws, ruleset_id=ruleset_id)
            if not rulesets.spec(db, workspace_id=ws, ruleset_id=ruleset_id).exclusions_enabled:
                ignored = [r for r in fresh_rules.all_specs(db, workspace_id=ws) if r.enabled]
    status = 200
    if isinstance(error, ConfirmationRequired):
        status, confirmation, error = 200, error.message, None
    else:
        confirmation = ""
    if error is not None:
        status = 409 if isinstance(error, Conflict) else 404 if isinstance(error, NotFound) else 422
        status = 403 if error.code == "forbidden" else status
    return page(
        request,
        "ruleset_form.html",
        status_code=status,
        viewer=viewer,
        ruleset_id=ruleset_id,
        form=form,
        sequences=used_by,
        ignored=ignored,
        confirmation=confirmation,
        is_admin=viewer.principal.role is Role.ADMIN,
        error=form_error(error),
    )


def _posted(name: str, exclusions_enabled: str | None, cooldown: str, cap: str) -> dict[str, Any]:
    return {
        "name": name,
        "exclusions_enabled": exclusions_enabled is not None,
        "reenroll_cooldown_days": cooldown,
        "max_active_per_company": cap,
    }


@router.get("/rulesets/new", response_class=HTMLResponse)
def new_ruleset(request: Request, viewer: PageViewer) -> HTMLResponse:
    form = _posted("", "on", "0", "")
    return _form_page(request, viewer, ruleset_id=None, form=form)


@router.post("/rulesets/new", response_model=None)
def create_ruleset(
    request: Request,
    viewer: FormViewer,
    name: Annotated[str, Form()] = "",
    exclusions_enabled: Annotated[str | None, Form()] = None,
    reenroll_cooldown_days: Annotated[str, Form()] = "",
    max_active_per_company: Annotated[str, Form()] = "",
) -> Response:
    posted = (name, exclusions_enabled, reenroll_cooldown_days, max_active_per_company)
    try:
        viewer.principal.require(Role.ADMIN)
        with site_of(request).engine.begin() as db:
            ruleset_id = rulesets.create(
                db, workspace_id=viewer.workspace_id, now=utcnow(), **_settings(*posted)
            )
    except OptoutError as exc:
        return _form_page(request, viewer, ruleset_id=None, form=_posted(*posted), error=exc)
    return redirect(request, f"/rulesets/{ruleset_id}", done=f"Created {name.strip()}.")


@router.get("/rulesets/{ruleset_id}", response_class=HTMLResponse)
def edit_ruleset(request: Request, viewer: PageViewer, ruleset_id: int) -> HTMLResponse:
    with site_of(request).reading() as db:
        spec = rulesets.spec(db, workspace_id=viewer.workspace_id, ruleset_id=ruleset_id)
    form = _posted(
        spec.name,
        "on" if spec.exclusions_enabled else None,
        str(spec.reenroll_cooldown_days),
        "" if spec.max_active_per_company is None else str(spec.max_active_per_company),
    )
    return _form_page(request, viewer, ruleset_id=spec.id, form=form)


@router.post("/rulesets/{ruleset_id}", response_model=None)
def save_ruleset(
    request: Request,
    viewer: FormViewer,
    ruleset_id: int,
    name: Annotated[str, Form()] = "",
    exclusions_enabled: Annotated[str | None, Form()] = None,
    reenroll_cooldown_days: Annotated[str, Form()] = "",
    max_active_per_company: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Change the settings; every later send is checked under the new ones (R28).
    Turning exclusions off where sequences use the ruleset first shows which rules
    would stop applying there and asks to confirm (R16)."""
    posted = (name, exclusions_enabled, reenroll_cooldown_days, max_active_per_company)
    try:
        viewer.principal.require(Role.ADMIN)
        with site_of(request).engine.begin() as db:
            saved = rulesets.update(
                db,
                workspace_id=viewer.workspace_id,
                ruleset_id=ruleset_id,
                changes=_settings(*posted),
                actor=viewer.actor,
                now=utcnow(),
                confirm=confirm == "yes",
            )
    except OptoutError as exc:
        return _form_page(request, viewer, ruleset_id=ruleset_id, form=_posted(*posted), error=exc)
    return redirect(request, f"/rulesets/{ruleset_id}", done=f"Saved {saved.name}.")
