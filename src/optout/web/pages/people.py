"""Person pages: search by address or name; one person with their fields, company,
enrollments, history (R35) and address ledger, the messages received about them and
their opt-out's trip to the CRM, each with its evidence (`services.suppression.signals`), the
explain panel (`explain.py`), and an opt-out button with a reason that any member may
use (R2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.db import tables as t
from optout.errors import ConfirmationRequired, InvalidInput
from optout.filters.words import readable
from optout.services import events
from optout.services.directory import companies, company_change, people
from optout.services.reads import browse, listing, search
from optout.services.suppression import optouts, signals
from optout.web.errors import status_of
from optout.web.pages import reads
from optout.web.pages.form_error import form_error
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

MAX_ENROLLMENTS = 200  # shown on a person's page, newest first


@router.get("/people", response_class=HTMLResponse)
def people_list(
    request: Request,
    viewer: PageViewer,
    q: str = "",
    sort: str = "",
    after: str = "",
    before: str = "",
) -> Response:
    """Everyone, a page at a time; or the people whose address or name begins with `q`,
    where one result (or one exact address) opens that person."""
    with site_of(request).reading() as db:
        if q.strip():
            found = [
                f
                for f in search.find(db, workspace_id=viewer.workspace_id, text=q)
                if f.kind == "person"
            ]
            result = None
        else:
            found = []
            result = browse.people(
                db, workspace_id=viewer.workspace_id, sort=sort, after=after, before=before
            )
    target = search.destination(found)
    if target is not None:
        return redirect(request, f"/people/{target.id}")
    return page(
        request,
        "people.html",
        viewer=viewer,
        q=q,
        found=found,
        result=result,
        sorts=browse.PEOPLE_SORTS,
    )


@router.get("/people/by-email/{email}", response_model=None)
def by_email(request: Request, viewer: PageViewer, email: str, sequence: str = "") -> Response:
    """The person's page; with `sequence`, its explain panel asks about that sequence."""
    with site_of(request).reading() as db:
        person_id = people.id_by_email(db, workspace_id=viewer.workspace_id, email=email)
    asked = f"?{urlencode({'sequence': sequence})}" if sequence else ""
    return redirect(request, f"/people/{person_id}{asked}")


def detail_text(detail: Mapping[str, Any]) -> str:
    """An event's detail as a line a person reads: names and code words (`opted_out`) in
    words, a filter with its fields' labels."""
    parts = []
    for key, value in detail.items():
        if key == "changes" and isinstance(value, Mapping):
            parts += [
                f"{_words(k)}: {_shown(k, v[0])} → {_shown(k, v[1])}" for k, v in value.items()
            ]
        elif value not in (None, "", [], {}):
            parts.append(f"{_words(key)}: {_shown(key, value)}")
    return "; ".join(parts)


_CODE_WORD = re.compile(r"[a-z]+(?:_[a-z]+)+")


def _words(name: str) -> str:
    return name.replace("_", " ")


def _shown(key: str, value: Any) -> str:
    if key == "filter" and isinstance(value, str):
        return readable(value)
    if isinstance(value, str) and _CODE_WORD.fullmatch(value):
        return _words(value)
    return str(value)


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person_page(
    request: Request, viewer: PageViewer, person_id: int, sequence: str = ""
) -> HTMLResponse:
    return _person_page(request, viewer, person_id, sequence)


def _person_page(
    request: Request,
    viewer: Viewer,
    person_id: int,
    sequence: str = "",
    *,
    refused: InvalidInput | None = None,
    typed: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The person's page; after a refused form (`refused`), with what was typed in its
    inputs (`typed`: by input name) and the message beside the input at fault."""
    ws = viewer.workspace_id
    with site_of(request).reading() as db:
        person = people.get(db, workspace_id=ws, person_id=person_id)
        company = (
            companies.get(db, workspace_id=ws, company_id=person["company_id"])
            if person["company_id"] is not None
            else None
        )
        history = events.history(db, workspace_id=ws, person_id=person_id)
        names = {
            "sequence": listing.names_by_id(
                db, t.sequences, workspace_id=ws, ids=(e.sequence_id for e in history)
            ),
            "exclusion": listing.names_by_id(
                db, t.exclusions, workspace_id=ws, ids=(e.exclusion_id for e in history)
            ),
        }
        enrolled = listing.enrollments(
            db, workspace_id=ws, person_id=person_id, limit=MAX_ENROLLMENTS, offset=0
        ).rows[::-1]
        choices = reads.sequence_choices(db, workspace_id=ws)
        suppressed = reads.suppressions_of(db, workspace_id=ws, email=person["email"])
        ledger = optouts.ledger(db, workspace_id=ws, email=person["email"])
        received = signals.received(
            db, workspace_id=ws, person_ids=[person_id], email=person["email"]
        )
        writebacks = signals.crm_writebacks(db, workspace_id=ws, email=person["email"])
    chosen = sequence if sequence in choices else (enrolled[0]["sequence"] if enrolled else "")
    typed = typed or {}
    return page(
        request,
        "person.html",
        status_code=200 if refused is None else status_of(refused),
        error=form_error(refused),
        company_domain=typed.get("domain", company["domain"] if company else ""),
        opt_out_reason=typed.get("reason", ""),
        viewer=viewer,
        person=person,
        company=company,
        linked_by=LINKED_BY.get(person["company_link_source"] or "", "not recorded"),
        history=history,
        names=names,
        detail_text=detail_text,
        enrollments=enrolled,
        choices=choices,
        chosen=chosen or (choices[0] if choices else ""),
        suppressed=suppressed,
        ledger=ledger,
        received=received,
        what_came=what_came,
        what_it_said=what_it_said,
        what_happened=what_happened,
        writebacks=writebacks,
    )


def what_came(message: signals.Received) -> str:
    """A received message, named the way an admin would."""
    if message.kind == "bounce":
        return BOUNCES.get(message.outcome, "Delivery report")
    if message.kind == "unsubscribe" and message.via_unsubscribe_address:
        return "Unsubscribe email to the address in our email's header"
    return KINDS.get(message.kind, message.kind.replace("_", " ").capitalize())


def what_it_said(message: signals.Received) -> list[str]:
    """The message's own evidence, a line each: a report's lines about the address, a
    complaint's type and sender, or a reply's words."""
    if message.recipients:
        many = len(message.recipients) > 1
        return [
            f"{r.address + ': ' if many else ''}{r.diagnostic or r.action}"
            + (f" ({r.why})" if r.why else "")
            for r in message.recipients
        ]
    if message.kind == "complaint":
        source = f" from {message.reporting_domain}" if message.reporting_domain else ""
        return [f"{message.feedback_type or 'a'} report{source}"]
    return [message.words or message.subject]


def what_happened(message: signals.Received) -> str:
    """What the message changed, and the review queue's decision on it."""
    done = OUTCOMES.get(message.outcome, message.outcome.replace("_", " ").capitalize())
    if message.reason and message.outcome not in OUTCOMES:
        done = f"{done}: {message.reason}"
    if message.review_decision:
        done += f"; reviewed: {message.review_decision.replace('_', ' ')}"
    return done


BOUNCES = {
    "bounced": "Hard bounce",
    "soft_bounce": "Soft bounce",
    "delayed": "Delivery delayed",
}
KINDS = {
    "complaint": "Spam complaint",
    "unsubscribe": "Reply asking to unsubscribe",
    "reply": "Reply",
    "auto_reply": "Auto-reply",
    "unclassified": "Message not recognised",
}
OUTCOMES = {
    "bounced": "Address marked bounced: never emailed again",
    "soft_bounce": "Counted as a soft bounce",
    "delayed": "Nothing: the receiving server keeps trying",
    "opted_out": "Opted out",
    "complained": "Suppressed: never emailed again",
    "review_needed": "Flagged for the review queue",
    "replied": "Sequence ended: replied",
    "auto_reply": "Nothing: the sequence continues",
    "not_spam": "Nothing: the report says it is not spam",
    "sending_refused": "Nothing held against the address: the server refused our sending",
}


@router.post("/people/{person_id}/opt-out", response_model=None)
def opt_out(
    request: Request,
    viewer: FormViewer,
    person_id: int,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Opt the person's address out of all email (R1); any member may (R2). Who, when, why
    and the channel (`manual`) go to the ledger."""
    if not reason.strip():
        missing = InvalidInput(
            "say why this person is opted out, such as “asked by phone to stop”: it is "
            "kept in the audit log",
            value=reason,
        ).at("reason", "Reason")
        return _person_page(request, viewer, person_id, refused=missing, typed={"reason": reason})
    ws = viewer.workspace_id
    with site_of(request).engine.begin() as db:
        person = people.get(db, workspace_id=ws, person_id=person_id)
        done = optouts.opt_out(
            db,
            workspace_id=ws,
            email=person["email"],
            actor=viewer.actor,
            channel="manual",
            now=utcnow(),
            reason=reason.strip(),
        )
    message = (
        f"Opted out {done.email}: ended {done.enrollments_ended} active enrollment(s), "
        f"cancelled {done.emails_cancelled} queued email(s)."
        if done.new
        else f"{done.email} had opted out already; recorded again."
    )
    return redirect(request, f"/people/{person_id}", done=message)


# How a person's company was set, as the page says it.
LINKED_BY = {
    "crm": "from the CRM",
    "column": "from an import column",
    "email_domain": "by email domain",
    "manual": "set by hand",
}


@router.post("/people/{person_id}/company", response_model=None)
def change_company(
    request: Request,
    viewer: FormViewer,
    person_id: int,
    domain: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Move the person to the company of `domain` (created when missing); the choice is
    kept: linking by email domain never overrides it. Removing the company is its own
    action (`remove_company`). When the move stops exclusions covering the person, the
    page names them and asks first (R12)."""
    if not domain.strip():
        return redirect(
            request,
            f"/people/{person_id}",
            problem="Type the domain of the person's new company. To leave them with no "
            "company, use “Remove company”.",
        )
    return _company_change(request, viewer, person_id, domain.strip(), confirm == "yes")


@router.get("/people/{person_id}/company/remove", response_class=HTMLResponse)
def remove_company_question(request: Request, viewer: PageViewer, person_id: int) -> Response:
    """Before the person's company is removed: which exclusions would stop covering them."""
    ws = viewer.workspace_id
    with site_of(request).engine.connect() as db, db.begin() as tx:
        person = people.get(db, workspace_id=ws, person_id=person_id)
        if person["company_id"] is None:
            tx.rollback()
            return redirect(request, f"/people/{person_id}", problem="No company to remove.")
        company = companies.get(db, workspace_id=ws, company_id=person["company_id"])
        stops = company_change.rules_that_stop(
            db, workspace_id=ws, person_id=person_id, domain=None, now=utcnow()
        )
        tx.rollback()
    return page(
        request,
        "company_confirm.html",
        viewer=viewer,
        person=person,
        company=company,
        domain=None,
        stops=stops,
        message="",
    )


@router.post("/people/{person_id}/company/remove", response_model=None)
def remove_company(
    request: Request,
    viewer: FormViewer,
    person_id: int,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Leave the person with no company; kept: linking by email domain never brings one
    back. Every company exclusion that covered them stops applying, so it asks first."""
    return _company_change(request, viewer, person_id, None, confirm == "yes")


def _company_change(
    request: Request, viewer: FormViewer, person_id: int, domain: str | None, confirm: bool
) -> Response:
    ws = viewer.workspace_id
    now = utcnow()
    try:
        with site_of(request).engine.begin() as db:
            removal = company_change.change(
                db,
                workspace_id=ws,
                person_id=person_id,
                domain=domain,
                actor=viewer.actor,
                now=now,
                confirm=confirm,
            )
            person = people.get(db, workspace_id=ws, person_id=person_id)
            company = (
                companies.get(db, workspace_id=ws, company_id=person["company_id"])
                if person["company_id"] is not None
                else None
            )
    except InvalidInput as exc:
        return _person_page(request, viewer, person_id, refused=exc, typed={"domain": domain or ""})
    except ConfirmationRequired as exc:
        with site_of(request).engine.connect() as db, db.begin() as tx:
            person = people.get(db, workspace_id=ws, person_id=person_id)
            company = (
                companies.get(db, workspace_id=ws, company_id=person["company_id"])
                if person["company_id"] is not None
                else None
            )
            stops = company_change.rules_that_stop(
                db, workspace_id=ws, person_id=person_id, domain=domain, now=now
            )
            tx.rollback()
        return page(
            request,
            "company_confirm.html",
            viewer=viewer,
            person=person,
            company=company,
            domain=domain,
            stops=stops,
            message=exc.message,
        )
    message = f"Company set to {company['domain']}." if company else "Company removed."
    if removal.enrollments_ended:
        message += f" Ended {removal.enrollments_ended} active enrollment(s) it now excludes."
    return redirect(request, f"/people/{person_id}", done=message)
