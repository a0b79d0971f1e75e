"""A sequence's "Enroll automatically" setting on its page (R41): on or off, with an
optional start and end, saved through `auto_enroll.switch`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response

from optout.clock import utcnow
from optout.errors import InvalidInput
from optout.services.enrollments.automatic_view import parse_moment
from optout.services.sequences import auto_enroll, definitions
from optout.web.pages.render import redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer
from optout.web.site import site_of

router = page_router()


@router.post("/sequences/{sequence_id}/automatic-enrollment", response_model=None)
def save_automatic_enrollment(
    request: Request,
    viewer: FormViewer,
    sequence_id: int,
    enroll_automatically: Annotated[str, Form()] = "",
    starts: Annotated[str, Form()] = "",
    ends: Annotated[str, Form()] = "",
) -> Response:
    """Turn it on (members never in the sequence are enrolled by the next pass, then
    everyone who comes to match) or off; a refusal comes back to the page as a notice."""
    ws = viewer.workspace_id
    back = f"/sequences/{sequence_id}"
    on = enroll_automatically == "on"
    try:
        with site_of(request).engine.begin() as db:
            name = definitions.spec(db, workspace_id=ws, sequence_id=sequence_id).name
            auto_enroll.switch(
                db,
                workspace_id=ws,
                sequence=name,
                on=on,
                actor=viewer.actor,
                now=utcnow(),
                starts=parse_moment(starts, what="Start") if on else None,
                ends=parse_moment(ends, what="End") if on else None,
            )
    except InvalidInput as exc:
        return redirect(request, back, problem=f"Not saved: {exc.message}.")
    done = (
        f"{name} now enrolls automatically: members of its audience who pass every check are "
        "enrolled within seconds."
        if on
        else f"{name} no longer enrolls automatically. Nobody was unenrolled."
    )
    return redirect(request, back, done=done)
