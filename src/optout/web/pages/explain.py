"""The explain panel of a person (R29): may they be enrolled in / emailed by a sequence
now, and why, with every check in R16 order and the blocking one highlighted. The page
renders the same `Decision` the CLI and the API do."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.eligibility import Purpose
from optout.errors import InvalidInput
from optout.evidence_words import evidence_lines
from optout.sending.send_time import window_text
from optout.services import eligibility
from optout.services.directory import people
from optout.services.exclusions import in_sequences
from optout.services.sequences import definitions
from optout.web.pages.render import page
from optout.web.pages.route import page_router
from optout.web.pages.viewer import PageViewer
from optout.web.site import site_of

router = page_router()


@router.get("/people/{person_id}/explain", response_class=HTMLResponse)
def explain_panel(
    request: Request,
    viewer: PageViewer,
    person_id: int,
    sequence: str = "",
    purpose: str = "enroll",
    how: str = "audience",
) -> HTMLResponse:
    """The explain panel for one sequence (htmx swaps it in when the select changes)."""
    if not sequence:
        return page(request, "fragments/explain.html", explanation=None, message="Pick a sequence.")
    try:
        asked = Purpose(purpose)
    except ValueError:
        raise InvalidInput("purpose must be 'enroll' or 'send'") from None
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        person = people.get(db, workspace_id=ws, person_id=person_id)
        explanation = eligibility.explain(
            db,
            workspace_id=ws,
            email=person["email"],
            sequence=sequence,
            now=utcnow(),
            purpose=asked,
            via_audience=False if how == "manual" else None,
        )
        use, ignored = in_sequences.ignored_in(db, workspace_id=ws, sequence=explanation.sequence)
        send_time = None
        if asked is Purpose.SEND and explanation.decision.allowed:
            send_time = window_text(
                db,
                person_id=person_id,
                sequence_id=definitions.spec_by_name(
                    db, workspace_id=ws, name=explanation.sequence
                ).id,
                now=utcnow(),
            )
    return page(
        request,
        "fragments/explain.html",
        explanation=explanation,
        decision=explanation.decision,
        primary=explanation.decision.primary_reason,
        evidence_lines=evidence_lines,
        ruleset_off=use if ignored else None,
        ignored=ignored,
        send_time=send_time,
        message="",
    )
