"""The server-rendered pages of signed-in users (Jinja2 + htmx, no build step): one router
module per page family, combined into `router`; their stylesheet, script and vendored
htmx are served from `static_files()`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from optout.web.pages import (
    audience_form,
    audiences,
    companies,
    crm,
    dashboard,
    exclusion_views,
    exclusions,
    explain,
    imports,
    in_doubt,
    invitations,
    jobs,
    login,
    mailbox_capacity,
    mailbox_edit,
    mailboxes,
    people,
    personas,
    review,
    rulesets,
    search,
    sequence_auto_enroll,
    sequence_editor,
    sequence_enroll,
    sequence_mailboxes,
    sequences,
)

router = APIRouter(include_in_schema=False)
for module in (
    login,
    dashboard,
    exclusion_views,  # before `exclusions`: its paths are longer, none is an exclusion id
    exclusions,
    audience_form,  # before `audiences`: /audiences/new is no audience id
    audiences,
    sequence_editor,  # before `sequences`: /sequences/new is no sequence id
    sequence_enroll,
    sequence_mailboxes,
    sequence_auto_enroll,
    sequences,
    personas,
    rulesets,
    mailbox_capacity,  # before `mailboxes`: /mailboxes/capacity is no mailbox id
    mailbox_edit,
    mailboxes,
    people,
    companies,
    search,
    explain,
    imports,
    crm,
    jobs,
    review,
    in_doubt,
    invitations,
):
    router.include_router(module.router)


def static_files() -> StaticFiles:
    return StaticFiles(directory=Path(str(files("optout.web") / "static")))
