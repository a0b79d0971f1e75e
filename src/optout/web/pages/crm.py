"""CRM connection pages: connect HubSpot or Salesforce (secrets kept encrypted and never
shown again), test the connection, map fields and the master opt-out field (R31), sync now
as a background job whose progress the page polls, and read how the sync is doing (R32),
under a badge that tells the connection's real state. Translation only: the use-cases are
in `optout.crm.manage`. Anyone signed in may read them; only an admin may change anything
or test the connection."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from optout.clock import utcnow
from optout.config import crm_allowed_hosts_from
from optout.crm import connections, credentials, manage, mapping, probe
from optout.crm.credentials import ROLE_NAMES
from optout.crm.mapping import MODES, OBJECTS, OPT_OUT, FieldMapping
from optout.crm.salesforce import AUTH_MODES
from optout.errors import InvalidMapping, NotFound, OptoutError
from optout.jobs import live, store
from optout.services.access.accounts import Role
from optout.web.errors import status_of
from optout.web.pages.crm_field_picker import CUSTOM, picked_field
from optout.web.pages.crm_field_picker import choices as field_choices
from optout.web.pages.form_error import form_error
from optout.web.pages.render import page, redirect, with_query
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

DEFAULT_URLS = {"hubspot": "https://api.hubapi.com", "salesforce": ""}
# The settings each connect form sends, besides the address and the secrets.
SETTING_FIELDS = {
    "hubspot": (),
    "salesforce": ("auth", "client_id", "login_url", "username", "private_key_path",
                   "organization_id"),
}  # fmt: skip


def _kind(kind: str) -> str:
    if kind not in connections.KINDS:
        raise NotFound(f"optout connects to {' and '.join(probe.CRM_NAMES.values())}, not {kind!r}")
    return kind


def _connection_page(
    request: Request,
    viewer: Viewer,
    kind: str,
    *,
    done: str = "",
    error: OptoutError | None = None,
    form: dict[str, str] | None = None,
    mapping_form: dict[str, str] | None = None,
    mapping_error: InvalidMapping | None = None,
    test_result: probe.ProbeResult | None = None,
    new_webhook_url: str = "",
    sync_job: int | None = None,
) -> HTMLResponse:
    site = site_of(request)
    with site.reading() as db:
        connection = manage.find(db, workspace_id=viewer.workspace_id, kind=kind)
        status = (
            None if connection is None else manage.status(db, connection=connection, env=os.environ)
        )
        job = _sync_job(db, viewer.workspace_id, sync_job)
    if form is None:
        form = {"base_url": DEFAULT_URLS[kind], "auth": "client_credentials"}
        if connection is not None:
            form = {"base_url": connection.base_url, "auth": "client_credentials"}
            form.update({k: str(v) for k, v in connection.settings.items() if v is not None})
    failed = error or mapping_error
    return page(
        request,
        "crm_connection.html",
        status_code=200 if failed is None else status_of(failed),
        viewer=viewer,
        kind=kind,
        crm_name=probe.CRM_NAMES[kind],
        status=status,
        form=form,
        roles=credentials.typed_roles(kind),
        role_names=ROLE_NAMES,
        auth_modes=AUTH_MODES,
        objects=[o.name for o in OBJECTS[kind]],
        modes=MODES,
        opt_out_field=OPT_OUT,
        our_field_label=lambda m: mapping.our_field_label(kind, m),
        our_field_groups=field_choices(kind, status.mappings if status is not None else {}),
        new_custom=CUSTOM,
        mapping_form=mapping_form or {},
        mapping_error=mapping_error,
        webhook_base=site.settings.base_url,
        is_admin=viewer.principal.role is Role.ADMIN,
        keys_set=bool(site.settings.encryption_keys),
        key_file=site.settings.encryption_key_file,
        job=job,
        job_labels=JOB_LABELS,
        **({"done": done} if done else {}),  # else the notice of the last redirect
        error=form_error(error),
        test_result=test_result,
        new_webhook_url=new_webhook_url,
        webhook_key=credentials.WEBHOOK_KEY,
    )


JOB_LABELS = {
    "queued": "Waiting to start",
    "running": "Syncing",
    "done": "Done",
    "failed": "Failed",
}


def _sync_job(db: Any, workspace_id: int, job_id: int | None) -> store.Job | None:
    """The sync job the page was sent to follow, as far as it got; None for any other."""
    if job_id is None:
        return None
    try:
        job = store.get(db, workspace_id=workspace_id, job_id=job_id)
    except NotFound:
        return None
    return live.overlay(job) if job.kind == "crm_sync" else None


@router.get("/crm", response_class=HTMLResponse)
def crm_list(request: Request, viewer: PageViewer) -> HTMLResponse:
    with site_of(request).reading() as db:
        rows = [
            {
                "kind": kind,
                "name": probe.CRM_NAMES[kind],
                "status": None
                if found is None
                else manage.status(db, connection=found, env=os.environ, runs=1),
            }
            for kind in connections.KINDS
            for found in [manage.find(db, workspace_id=viewer.workspace_id, kind=kind)]
        ]
    return page(request, "crm.html", viewer=viewer, rows=rows)


@router.get("/crm/{kind}", response_class=HTMLResponse)
def crm_connection(
    request: Request, viewer: PageViewer, kind: str, job: int | None = None
) -> HTMLResponse:
    return _connection_page(request, viewer, _kind(kind), sync_job=job)


@router.get("/crm/{kind}/sync-panel", response_class=HTMLResponse)
def sync_panel(request: Request, viewer: PageViewer, kind: str, job: int | None = None) -> Response:
    """The fragment the page polls while a sync job runs: its progress, then its outcome,
    the counts and the connection's state as they are now."""
    kind = _kind(kind)
    with site_of(request).reading() as db:
        connection = manage.find(db, workspace_id=viewer.workspace_id, kind=kind)
        if connection is None:
            raise NotFound(f"this workspace is not connected to {probe.CRM_NAMES[kind]} yet")
        status = manage.status(db, connection=connection, env=os.environ)
        found = _sync_job(db, viewer.workspace_id, job)
    return page(
        request,
        "fragments/crm_sync_panel.html",
        viewer=viewer,
        kind=kind,
        crm_name=probe.CRM_NAMES[kind],
        status=status,
        objects=[o.name for o in OBJECTS[kind]],
        is_admin=viewer.principal.role is Role.ADMIN,
        job=found,
        job_labels=JOB_LABELS,
        oob=True,
    )


@router.post("/crm/{kind}", response_model=None)
def save_connection(
    request: Request,
    viewer: FormViewer,
    kind: str,
    base_url: Annotated[str, Form()] = "",
    auth: Annotated[str, Form()] = "",
    client_id: Annotated[str, Form()] = "",
    login_url: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    private_key_path: Annotated[str, Form()] = "",
    organization_id: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    webhook_secret: Annotated[str, Form()] = "",
    client_secret: Annotated[str, Form()] = "",
) -> Response:
    """Connect, or change the connection; a secret left empty keeps the saved one."""
    kind = _kind(kind)
    given = {
        "auth": auth,
        "client_id": client_id,
        "login_url": login_url,
        "username": username,
        "private_key_path": private_key_path,
        "organization_id": organization_id,
    }
    settings: dict[str, Any] = {
        name: given[name].strip() for name in SETTING_FIELDS[kind] if given[name].strip()
    }
    secrets = {"token": token, "webhook_secret": webhook_secret, "client_secret": client_secret}
    wanted = {role: secrets[role] for role in credentials.typed_roles(kind)}
    try:
        viewer.principal.require(Role.ADMIN)
        with site_of(request).engine.begin() as db:
            manage.connect(
                db,
                workspace_id=viewer.workspace_id,
                kind=kind,
                base_url=base_url,
                settings=settings,
                secrets=wanted,
                keys=site_of(request).settings.encryption_keys,
                now=utcnow(),
                allowed_hosts=crm_allowed_hosts_from(os.environ),
            )
    except OptoutError as exc:
        form = {"base_url": base_url, **{k: v for k, v in given.items() if v}}
        return _connection_page(request, viewer, kind, error=exc, form=form)
    saved = [ROLE_NAMES[role] for role, value in wanted.items() if value.strip()]
    note = f" Saved, encrypted: {', '.join(saved)}." if saved else ""
    return redirect(
        request, f"/crm/{kind}", done=f"{probe.CRM_NAMES[kind]} connection saved.{note}"
    )


@router.post("/crm/{kind}/test", response_model=None)
async def test_connection(request: Request, viewer: FormViewer, kind: str) -> Response:
    """One real call to the CRM, by an admin (it sends the saved secrets to the saved
    address); the answer is shown in place."""
    kind = _kind(kind)
    site = site_of(request)
    try:
        viewer.principal.require(Role.ADMIN)
    except OptoutError as exc:
        return await run_in_threadpool(_connection_page, request, viewer, kind, error=exc)
    try:
        result = await run_in_threadpool(
            manage.test,
            site.engine,
            workspace_id=viewer.workspace_id,
            kind=kind,
            env=os.environ,
            keys=site.settings.encryption_keys,
        )
    except OptoutError as exc:
        result = probe.ProbeResult(False, exc.message, 0)
    if request.headers.get("HX-Request") == "true":
        return await run_in_threadpool(_test_fragment, request, viewer, kind, result)
    return await run_in_threadpool(_connection_page, request, viewer, kind, test_result=result)


def _test_fragment(
    request: Request, viewer: Viewer, kind: str, result: probe.ProbeResult
) -> HTMLResponse:
    """The test's answer, and the connection's state badge swapped in beside it."""
    with site_of(request).reading() as db:
        connection = manage.find(db, workspace_id=viewer.workspace_id, kind=kind)
        status = (
            None
            if connection is None
            else manage.status(db, connection=connection, env=os.environ, runs=1)
        )
    return page(request, "fragments/crm_test.html", test_result=result, status=status, oob=True)


@router.post("/crm/{kind}/mappings", response_model=None)
def save_mapping(
    request: Request,
    viewer: FormViewer,
    kind: str,
    crm_object: Annotated[str, Form()] = "",
    crm_field: Annotated[str, Form()] = "",
    our_field: Annotated[str, Form()] = "",
    custom_field: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "read",
    origin: Annotated[str, Form()] = "mapping",
) -> Response:
    """Map a CRM field to one of ours, picked by its label (`crm_field_picker`) or named
    (`our_field=email_opt_out` chooses the master opt-out field of that object)."""
    kind = _kind(kind)
    posted = {
        "crm_object": crm_object,
        "crm_field": crm_field.strip(),
        "our_field": our_field.strip(),
        "custom_field": custom_field.strip(),
        "mode": mode,
    }
    try:
        viewer.principal.require(Role.ADMIN)
        ours = picked_field(kind, crm_object, our_field, custom_field)
        with site_of(request).engine.begin() as db:
            connection = connections.get(db, workspace_id=viewer.workspace_id, kind=kind)
            saved = connections.set_mapping(
                db,
                connection=connection,
                field_mapping=FieldMapping(crm_object, posted["crm_field"], ours, mode),
                now=utcnow(),
            )
    except InvalidMapping as exc:
        shown = {**posted, "origin": origin}
        return _connection_page(request, viewer, kind, mapping_form=shown, mapping_error=exc)
    except OptoutError as exc:
        return _connection_page(request, viewer, kind, error=exc)
    done = mapping.in_words(kind, probe.CRM_NAMES[kind], saved)
    return redirect(request, f"/crm/{kind}", done=done)


@router.post("/crm/{kind}/sync", response_model=None)
def sync_now(request: Request, viewer: FormViewer, kind: str) -> Response:
    """Queue the sync the schedule runs, for now, as a background job; the page follows
    its progress."""
    kind = _kind(kind)
    site = site_of(request)
    try:
        viewer.principal.require(Role.ADMIN)
        job = manage.queue_sync(
            site.engine,
            workspace_id=viewer.workspace_id,
            kind=kind,
            env=os.environ,
            keys=site.settings.encryption_keys,
            actor=viewer.principal.actor,
        )
    except OptoutError as exc:
        return _connection_page(request, viewer, kind, error=exc)
    return redirect(request, with_query(f"/crm/{kind}", job=job.id))


@router.post("/crm/{kind}/webhook-secret", response_model=None)
def new_webhook_secret(request: Request, viewer: FormViewer, kind: str) -> Response:
    """Make a new webhook address (its secret replaces the old one) and show it once: it is
    answered in this page, never put in a redirect's address."""
    kind = _kind(kind)
    site = site_of(request)
    try:
        viewer.principal.require(Role.ADMIN)
        with site.engine.begin() as db:
            connection = connections.get(db, workspace_id=viewer.workspace_id, kind=kind)
            secret = credentials.new_webhook_secret(
                db, connection=connection, keys=site.settings.encryption_keys, now=utcnow()
            )
    except OptoutError as exc:
        return _connection_page(request, viewer, kind, error=exc)
    path = f"/crm/webhooks/{kind}/{connection.id}"
    url = with_query(f"{site.settings.base_url}{path}", **{credentials.WEBHOOK_KEY: secret})
    return _connection_page(
        request,
        viewer,
        kind,
        done="A new webhook address is made; the one before it no longer works.",
        new_webhook_url=url,
    )
