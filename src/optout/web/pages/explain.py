"""The explain panel of a person (R29): may they be enrolled in / emailed by a sequence
now, and why, with every check in R16 order and the blocking one highlighted. The page
renders the same `Decision` the CLI and the API do."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.eligibility import Purpose
from optout.eligibility.model import Outcome
from optout.errors import InvalidInput
from optout.filters.words import readable
from optout.sending.send_time import window_text
from optout.services import eligibility, people, rule_reach, sequences
from optout.web.pages.render import page
from optout.web.pages.route import page_router
from optout.web.pages.viewer import PageViewer
from optout.web.site import site_of

router = page_router()

_CODE_WORD = re.compile(r"[a-z]+(?:_[a-z]+)+")
TOGGLES = ("level", "exclude_from_sequences", "unenroll_existing_on_save", "exclusion")


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_value(v) for v in value) + ")"
    if isinstance(value, str) and _CODE_WORD.fullmatch(value):
        return value.replace("_", " ")  # a value as the code names it: `unsubscribe_link`
    return str(value).split(".", 1)[0] if _looks_like_moment(value) else str(value)


def _looks_like_moment(value: Any) -> bool:
    text = str(value)
    return len(text) > 19 and text[4] == "-" and text[10] in " T" and text[19] == "."


def evidence_lines(outcome: Outcome) -> list[str]:
    """The evidence of one outcome, a line each: matched conditions with the actual
    values, the company that matched, an exclusion's toggles, then the rest."""
    evidence: Mapping[str, Any] = outcome.evidence
    lines = [
        f"{readable(c['condition'])} ← {_value(c.get('actual'))}"
        for c in evidence.get("conditions", [])
    ]
    if "company" in evidence and outcome.exclusion_id is not None:
        via = " (a linked company)" if evidence.get("linked_company") else ""
        lines.append(f"matched company: {evidence['company']}{via}")
    if "exclude_from_sequences" in evidence:
        lines.append(
            f"{evidence.get('level', '?')} level · exclude from sequences "
            f"{'on' if evidence['exclude_from_sequences'] else 'off'} · unenroll on save "
            f"{'on' if evidence.get('unenroll_existing_on_save') else 'off'}"
        )
    skip = {"conditions", "linked_company", *TOGGLES}
    if outcome.exclusion_id is not None:
        skip.add("company")
    rest = [f"{k.replace('_', ' ')}: {_value(v)}" for k, v in evidence.items() if k not in skip]
    if rest:
        lines.append(", ".join(rest))
    return lines


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
        use, ignored = rule_reach.ignored_in(db, workspace_id=ws, sequence=explanation.sequence)
        send_time = None
        if asked is Purpose.SEND and explanation.decision.allowed:
            send_time = window_text(
                db,
                person_id=person_id,
                sequence_id=sequences.spec_by_name(
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
