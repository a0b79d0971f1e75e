"""Creating and editing a sequence in the browser: settings (name, ruleset, audience,
sender) and a steps editor (email and wait steps, add, move, delete), with each email
step rendered live for a real person of the workspace, unsubscribe footer included,
and a template error shown at its step."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.db import tables as t
from optout.errors import ConfirmationRequired, Conflict, InvalidInput, NotFound, OptoutError
from optout.mail.templates import InvalidTemplate
from optout.normalize import normalize_email
from optout.sending.threads import reply_subject
from optout.services.directory import people
from optout.services.exclusions import in_sequences
from optout.services.naming import row_by_name
from optout.services.reads import listing
from optout.services.sequences import auto_enroll, definitions
from optout.services.sequences.definitions import InvalidStep
from optout.services.sequences.edits import editable, replace_steps, update_settings
from optout.services.sequences.step_preview import render_step
from optout.web.headers import EMAIL_PREVIEW_POLICY
from optout.web.pages.form_error import form_error
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.sequence_form import (
    SequenceForm,
    apply_op,
    choices,
    form_context,
    posted_sequence,
    with_emails,
)
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

PostedSequence = Annotated[SequenceForm, Depends(posted_sequence)]


def _form_page(
    request: Request,
    viewer: Viewer,
    form: SequenceForm,
    *,
    sequence_id: int | None,
    status_code: int = 200,
    preview_email: str = "",
    **extra: object,
) -> HTMLResponse:
    """The form; the preview is for `preview_email`, else the workspace's first person."""
    with site_of(request).reading() as db:
        options = choices(db, workspace_id=viewer.workspace_id)
        first = listing.people(db, workspace_id=viewer.workspace_id, limit=1, offset=0).rows
    preview_email = preview_email.strip() or (first[0]["email"] if first else "")
    response = page(
        request,
        "sequence_form.html",
        status_code=status_code,
        viewer=viewer,
        sequence_id=sequence_id,
        preview_email=preview_email,
        **options,
        **form_context(form, **extra),
    )
    response.headers["Content-Security-Policy"] = EMAIL_PREVIEW_POLICY
    return response


def _refused(
    request: Request,
    viewer: Viewer,
    form: SequenceForm,
    error: OptoutError,
    *,
    sequence_id: int | None,
    preview_email: str,
) -> HTMLResponse:
    """The form back as posted, the error at its step when it is about one."""
    status = 409 if isinstance(error, Conflict) else 404 if isinstance(error, NotFound) else 422
    if isinstance(error, InvalidStep):
        return _form_page(
            request,
            viewer,
            form,
            sequence_id=sequence_id,
            status_code=status,
            preview_email=preview_email,
            step_error=(error.index, error.reason),
        )
    return _form_page(
        request,
        viewer,
        form,
        sequence_id=sequence_id,
        status_code=status,
        preview_email=preview_email,
        error=form_error(error),
    )


@router.get("/sequences/new", response_class=HTMLResponse)
def new_sequence(request: Request, viewer: PageViewer) -> HTMLResponse:
    return _form_page(request, viewer, SequenceForm(), sequence_id=None)


@router.post("/sequences/new", response_model=None)
def create_sequence(
    request: Request,
    viewer: FormViewer,
    form: PostedSequence,
    op: Annotated[str, Form()] = "",
    preview_email: Annotated[str, Form()] = "",
) -> Response:
    """Create it (active at once), or apply a steps-editor button and show the form again."""
    if op:
        return _apply(request, viewer, form, op, sequence_id=None, preview_email=preview_email)
    try:
        with site_of(request).engine.begin() as db:
            now = utcnow()
            sequence_id = definitions.create(
                db,
                workspace_id=viewer.workspace_id,
                name=form.name,
                ruleset=form.ruleset,
                audience=form.audience or None,
                from_address=form.from_address,
                reply_to=form.reply_to,
                steps=form.parsed_steps(),
                now=now,
                schedule=form.schedule(),
            )
            if form.audience and form.enroll_automatically:
                auto_enroll.switch(
                    db,
                    workspace_id=viewer.workspace_id,
                    sequence=form.name,
                    on=True,
                    actor=viewer.actor,
                    now=now,
                )
    except (InvalidInput, Conflict, NotFound) as exc:
        return _refused(request, viewer, form, exc, sequence_id=None, preview_email=preview_email)
    return redirect(request, f"/sequences/{sequence_id}", done=f"Created {form.name}.")


@router.get("/sequences/{sequence_id}/edit", response_class=HTMLResponse)
def edit_sequence(request: Request, viewer: PageViewer, sequence_id: int) -> HTMLResponse:
    with site_of(request).reading() as db:
        current = editable(db, workspace_id=viewer.workspace_id, sequence_id=sequence_id)
    return _form_page(request, viewer, SequenceForm.of(current), sequence_id=current.id)


@router.post("/sequences/{sequence_id}/edit", response_model=None)
def save_sequence(
    request: Request,
    viewer: FormViewer,
    sequence_id: int,
    form: PostedSequence,
    op: Annotated[str, Form()] = "",
    preview_email: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Save settings and steps in one transaction, or apply a steps-editor button. A move
    to a ruleset with exclusions off first says which rules would stop applying here and
    asks to confirm (R16)."""
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        stored = editable(db, workspace_id=ws, sequence_id=sequence_id)
    form = with_emails(form, {s.id: s.emails for s in stored.steps})
    if op:
        return _apply(
            request, viewer, form, op, sequence_id=sequence_id, preview_email=preview_email
        )
    try:
        with site_of(request).engine.begin() as db:
            now = utcnow()
            if confirm != "yes" and form.ruleset:
                target = row_by_name(
                    db, t.rulesets, workspace_id=ws, name=form.ruleset, what="ruleset"
                )
                in_sequences.confirm_move(
                    db, workspace_id=ws, sequence_id=sequence_id, ruleset_id=target["id"], now=now
                )
            update_settings(
                db,
                workspace_id=ws,
                sequence_id=sequence_id,
                changes=form.settings(),
                actor=viewer.actor,
                now=now,
            )
            replace_steps(
                db,
                workspace_id=ws,
                sequence_id=sequence_id,
                steps=form.edited_steps(),
                actor=viewer.actor,
                now=now,
            )
    except ConfirmationRequired as exc:
        return _form_page(
            request,
            viewer,
            form,
            sequence_id=sequence_id,
            preview_email=preview_email,
            confirmation=exc.message,
        )
    except (InvalidInput, Conflict, NotFound) as exc:
        return _refused(
            request, viewer, form, exc, sequence_id=sequence_id, preview_email=preview_email
        )
    return redirect(request, f"/sequences/{sequence_id}", done=f"Saved {form.name or stored.name}.")


def _apply(
    request: Request,
    viewer: Viewer,
    form: SequenceForm,
    op: str,
    *,
    sequence_id: int | None,
    preview_email: str,
) -> HTMLResponse:
    try:
        changed, focus = apply_op(form, op)
    except InvalidInput as exc:
        return _form_page(
            request,
            viewer,
            form,
            sequence_id=sequence_id,
            preview_email=preview_email,
            error=exc.message,
        )
    return _form_page(
        request, viewer, changed, sequence_id=sequence_id, preview_email=preview_email, focus=focus
    )


@router.post("/sequences/step-preview", response_class=HTMLResponse)
def step_preview(
    request: Request,
    viewer: FormViewer,
    form: PostedSequence,
    preview_index: Annotated[int, Form()] = 0,
    preview_email: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """One email step of the form rendered for a person (htmx, as the step is typed)."""
    ws = viewer.workspace_id
    fragment = "fragments/step_preview.html"
    if not 0 <= preview_index < len(form.steps) or form.steps[preview_index].kind != "email":
        return page(request, fragment, preview=None, error="", message="Nothing to preview.")
    if not preview_email.strip():
        return page(
            request, fragment, preview=None, error="", message="Give a person's address above."
        )
    try:
        (step,) = definitions.steps_from_data([form.steps[preview_index].data()])
    except InvalidInput as exc:
        return page(request, fragment, preview=None, error=exc.message, message="")
    first = next((i for i, s in enumerate(form.steps) if s.kind == "email"), preview_index)
    if first < preview_index and not step.subject.strip():
        # A follow-up without a subject of its own answers the first email (R39).
        step = replace(step, subject=reply_subject(form.steps[first].subject))
    site = site_of(request)
    with site.reading() as db:
        try:
            address = normalize_email(preview_email).address
            person_id = people.id_by_email(db, workspace_id=ws, email=address)
        except (InvalidInput, NotFound) as exc:
            return page(request, fragment, preview=None, error="", message=exc.message)
        token = site.tokens.issue(workspace_id=ws, person_id=person_id, email=address)
        try:
            preview = render_step(
                db,
                workspace_id=ws,
                person_id=person_id,
                step=step,
                from_address=form.from_address,
                unsubscribe_url=site.settings.unsubscribe_url(token),
            )
        except InvalidTemplate as exc:
            return page(request, fragment, preview=None, error=exc.message, message="")
    return page(request, fragment, preview=preview, error="", message="")
