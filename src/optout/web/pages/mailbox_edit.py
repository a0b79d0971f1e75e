"""Editing and removing a sender mailbox (R37). The edit form holds every setting of the
mailbox: its address, name, signature, limits, time zone, owner, the server it sends
through and the IMAP login its replies arrive at; passwords are written, never shown.
Removing a mailbox that active enrollments send from asks where they go: to another
mailbox, or dealt over the other mailboxes of each of their sequences."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from optout.clock import utcnow
from optout.errors import Conflict, InvalidInput, OptoutError
from optout.services.access.accounts import Role
from optout.services.mailboxes import removal, sender_mailboxes
from optout.services.mailboxes.imap_logins import ImapLogin
from optout.web.errors import status_of
from optout.web.pages.form_error import form_error
from optout.web.pages.mailboxes import one_mailbox
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

ROUND_ROBIN = "round-robin"
FIELDS = (
    "address",
    "display_name",
    "signature",
    "daily_limit",
    "min_gap_seconds",
    "time_zone",
    "owner",
    "smtp_url",
    "imap_host",
    "imap_port",
    "imap_user",
    "imap_password",
    "imap_folder",
)


def _form_of(box: sender_mailboxes.Mailbox, imap: dict[str, object]) -> dict[str, str]:
    return {
        "address": box.address,
        "display_name": box.display_name,
        "signature": box.signature,
        "daily_limit": "" if box.daily_limit is None else str(box.daily_limit),
        "gap": str(box.min_gap_seconds),
        "time_zone": box.time_zone,
        "owner": box.owner or "",
        "smtp_url": "" if box.transport == sender_mailboxes.RELAY else box.transport,
        "imap_host": str(imap["imap_host"] or ""),
        "imap_port": "" if imap["imap_port"] is None else str(imap["imap_port"]),
        "imap_user": str(imap["imap_user"] or ""),
        "imap_ssl": "on" if imap["imap_ssl"] else "",
        "imap_folder": str(imap["imap_folder"] or "INBOX"),
    }


def _edit_page(
    request: Request,
    viewer: Viewer,
    mailbox_id: int,
    *,
    form: dict[str, str] | None = None,
    error: OptoutError | None = None,
) -> HTMLResponse:
    with site_of(request).reading() as db:
        box = one_mailbox(db, viewer, mailbox_id)
        stored = sender_mailboxes.row(db, workspace_id=viewer.workspace_id, address=box.address)
    return page(
        request,
        "mailbox_edit.html",
        status_code=200 if error is None else status_of(error),
        viewer=viewer,
        box=box,
        has_imap_password=bool(stored["imap_password"]),
        form=form or _form_of(box, stored),
        error=form_error(error),
        fields=FIELDS,
    )


@router.get("/mailboxes/{mailbox_id}/edit", response_class=HTMLResponse)
def edit_form(request: Request, viewer: PageViewer, mailbox_id: int) -> HTMLResponse:
    viewer.principal.require(Role.ADMIN)
    return _edit_page(request, viewer, mailbox_id)


def _whole(value: str, *, field: str, label: str, unit: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{value.strip()!r} is not a whole number: type a number of {unit}", value=value
        ).at(field, label) from None


def _address_or_typed(typed: str) -> str:
    """The mailbox's address as it is stored, for the IMAP login it defaults to (a typed
    address that is refused is told beside the address input, by the edit itself)."""
    try:
        return sender_mailboxes.check_address(typed)
    except InvalidInput:
        return typed.strip()


def _changes(form: dict[str, str], passwords: dict[str, str]) -> sender_mailboxes.Changes:
    limit = form["daily_limit"].strip()
    imap: ImapLogin | None = None
    if form["imap_host"].strip():
        port = form["imap_port"].strip()
        imap = ImapLogin(
            host=form["imap_host"],
            user=form["imap_user"].strip() or _address_or_typed(form["address"]),
            password=passwords["imap_password"] or None,
            port=_whole(port, field="imap_port", label="IMAP port", unit="a port")
            if port
            else None,
            ssl=bool(form["imap_ssl"]),
            folder=form["imap_folder"],
        )
    smtp = form["smtp_url"].strip()
    return sender_mailboxes.Changes(
        address=form["address"],
        display_name=form["display_name"],
        signature=form["signature"],
        daily_limit=(
            _whole(limit, field="daily_limit", label="Daily limit", unit="emails")
            if limit
            else None
        ),
        no_daily_limit=not limit,
        min_gap_seconds=_whole(
            form["gap"], field="min_gap_seconds", label="Seconds between two sends", unit="seconds"
        ),
        time_zone=form["time_zone"] or "UTC",
        owner=form["owner"],
        smtp_url=smtp or None,
        smtp_password=(passwords["smtp_password"] or None) if smtp else None,
        shared_relay=not smtp,
        imap=imap,
        no_imap=imap is None,
    )


@router.post("/mailboxes/{mailbox_id}/edit", response_model=None)
def save_mailbox(
    request: Request,
    viewer: FormViewer,
    mailbox_id: int,
    address: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    signature: Annotated[str, Form()] = "",
    daily_limit: Annotated[str, Form()] = "",
    gap: Annotated[str, Form()] = "",
    time_zone: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "",
    smtp_url: Annotated[str, Form()] = "",
    smtp_password: Annotated[str, Form()] = "",
    imap_host: Annotated[str, Form()] = "",
    imap_port: Annotated[str, Form()] = "",
    imap_user: Annotated[str, Form()] = "",
    imap_password: Annotated[str, Form()] = "",
    imap_ssl: Annotated[str, Form()] = "",
    imap_folder: Annotated[str, Form()] = "",
) -> Response:
    viewer.principal.require(Role.ADMIN)
    form = {
        "address": address,
        "display_name": display_name,
        "signature": signature,
        "daily_limit": daily_limit,
        "gap": gap,
        "time_zone": time_zone,
        "owner": owner,
        "smtp_url": smtp_url,
        "imap_host": imap_host,
        "imap_port": imap_port,
        "imap_user": imap_user,
        "imap_ssl": imap_ssl,
        "imap_folder": imap_folder,
    }
    site = site_of(request)
    try:
        changes = _changes(form, {"smtp_password": smtp_password, "imap_password": imap_password})
        with site.engine.begin() as db:
            box = one_mailbox(db, viewer, mailbox_id)
            saved = sender_mailboxes.edit(
                db,
                workspace_id=viewer.workspace_id,
                address=box.address,
                changes=changes,
                keys=site.settings.encryption_keys,
                actor=viewer.actor,
                now=utcnow(),
            )
    except (InvalidInput, Conflict) as exc:
        return _edit_page(request, viewer, mailbox_id, form=form, error=exc)
    return redirect(request, "/mailboxes", done=f"Saved {saved.address}.")


def _remove_page(
    request: Request,
    viewer: Viewer,
    mailbox_id: int,
    *,
    error: OptoutError | None = None,
    chosen: str = "",
) -> HTMLResponse:
    with site_of(request).reading() as db:
        box = one_mailbox(db, viewer, mailbox_id)
        active = removal.active_enrollments(db, mailbox_id=box.id)
        others = [
            m
            for m in sender_mailboxes.listing(db, workspace_id=viewer.workspace_id, now=utcnow())
            if m.id != box.id
        ]
    return page(
        request,
        "mailbox_remove.html",
        status_code=200 if error is None else status_of(error),
        viewer=viewer,
        box=box,
        active=active,
        others=others,
        shared={m.address for m in others if set(m.sequences) & set(box.sequences)},
        chosen=chosen,
        round_robin=ROUND_ROBIN,
        error=form_error(error),
    )


@router.get("/mailboxes/{mailbox_id}/remove", response_class=HTMLResponse)
def remove_form(request: Request, viewer: PageViewer, mailbox_id: int) -> HTMLResponse:
    viewer.principal.require(Role.ADMIN)
    return _remove_page(request, viewer, mailbox_id)


@router.post("/mailboxes/{mailbox_id}/remove", response_model=None)
def remove_mailbox(
    request: Request,
    viewer: FormViewer,
    mailbox_id: int,
    move_to: Annotated[str, Form()] = "",
) -> Response:
    viewer.principal.require(Role.ADMIN)
    try:
        with site_of(request).engine.begin() as db:
            box = one_mailbox(db, viewer, mailbox_id)
            removed = removal.remove(
                db,
                workspace_id=viewer.workspace_id,
                address=box.address,
                move_to=move_to if move_to and move_to != ROUND_ROBIN else None,
                round_robin=move_to == ROUND_ROBIN,
                actor=viewer.actor,
                now=utcnow(),
            )
    except (InvalidInput, Conflict) as exc:
        return _remove_page(request, viewer, mailbox_id, error=exc, chosen=move_to)
    if removed.moved_to:
        done = (
            f"Removed {removed.address}; {removed.enrollments_moved:,} enrollment(s) now "
            f"send from {removed.moved_to}."
        )
    elif removed.round_robin:
        done = (
            f"Removed {removed.address}; {removed.enrollments_moved:,} enrollment(s) were "
            "shared out over the other mailboxes of their sequences."
        )
    else:
        done = f"Removed {removed.address}."
    return redirect(request, "/mailboxes", done=done)
