"""Import pages (R23): upload a CSV, map its columns to fields (people, companies) or pick
the column of an exclusion list, then apply it in one transaction. When any row cannot
be used nothing is imported, and the error report (row, column, value, reason) is
offered as a CSV download.

People and companies imports run as background jobs (all or nothing, in one
transaction): the job page shows the progress and then the result. An import straight
into an exclusion list runs within the request, because its save may first ask for a
confirmation (R22).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from optout.clock import utcnow
from optout.errors import ConfirmationRequired, InvalidInput, NotFound
from optout.jobs import submit
from optout.services.imports import company_files, exclusion_lists, people_files, reporting
from optout.services.imports.csv_files import CUSTOM_PREFIX, Kind, read_csv
from optout.web import uploads
from optout.web.pages import reads
from optout.web.pages.render import page, redirect
from optout.web.pages.route import page_router
from optout.web.pages.viewer import FormViewer, PageViewer, Viewer
from optout.web.site import site_of

router = page_router()

KINDS: dict[str, str] = {
    "people": "People",
    "companies": "Companies",
    "exclusion_list": "Straight into an exclusion list",
}
SKIP, CUSTOM = "", "custom"
SAMPLE_ROWS = 3
SHOWN_ERRORS = 50
# Header spellings that map to a field without being its exact name.
ALIASES = {
    "email_address": "email",
    "e_mail": "email",
    "company": "company_domain",
    "company_website": "company_domain",
    "website": "domain",
    "company_domain_name": "company_domain",
    "job_title": "title",
    "first": "first_name",
    "last": "last_name",
    "opt_out": "email_opt_out",
    "unsubscribed": "email_opt_out",
    "parent": "parent_domain",
    "timezone": "time_zone",
    "tz": "time_zone",
}


def _kind(kind: str) -> Kind:
    if kind == "people":
        return people_files.PEOPLE
    if kind == "companies":
        return company_files.COMPANIES
    raise InvalidInput(f"unknown import kind {kind!r}")


def _slug(column: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")
    return text if text[:1].isalpha() else f"f_{text}".rstrip("_")


def _guess(column: str, kind: Kind) -> str:
    key = _slug(column)
    field = ALIASES.get(key, key)
    if kind.name == "companies" and field == "company_domain":
        field = "domain"
    return field if field in kind.fields else SKIP


def _recent(request: Request, viewer: Viewer) -> list[dict[str, Any]]:
    with site_of(request).reading() as db:
        return reads.recent_imports(db, workspace_id=viewer.workspace_id)


@router.get("/imports", response_class=HTMLResponse)
def upload_form(request: Request, viewer: PageViewer) -> HTMLResponse:
    return page(
        request,
        "imports.html",
        viewer=viewer,
        kinds=KINDS,
        error="",
        recent=_recent(request, viewer),
    )


@router.post("/imports", response_model=None)
async def upload(
    request: Request,
    viewer: FormViewer,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form()] = "people",
) -> Response:
    if kind not in KINDS:
        raise InvalidInput(f"unknown import kind {kind!r}")
    data = await file.read(uploads.MAX_BYTES + 1)
    try:
        token = uploads.save(
            workspace_id=viewer.workspace_id, name=file.filename or "upload.csv", data=data
        )
        path = uploads.csv_path(workspace_id=viewer.workspace_id, token=token)
        await run_in_threadpool(_read, path)
    except InvalidInput as exc:
        recent = await run_in_threadpool(_recent, request, viewer)
        return page(
            request,
            "imports.html",
            status_code=422,
            viewer=viewer,
            kinds=KINDS,
            error=exc.message,
            recent=recent,
        )
    return redirect(request, f"/imports/{token}?kind={kind}")


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return read_csv(stream)


def _mapping_context(
    viewer: Viewer, token: str, kind: str, chosen: dict[str, str] | None = None
) -> dict[str, Any]:
    if kind not in KINDS:
        raise InvalidInput(f"unknown import kind {kind!r}")
    path = uploads.csv_path(workspace_id=viewer.workspace_id, token=token)
    data = _read(path)
    samples = [cells for _, cells in data.records[:SAMPLE_ROWS]]
    guessing = kind != "exclusion_list"
    columns = [
        {
            "index": i,
            "name": name,
            "samples": [cells[i] if i < len(cells) else "" for cells in samples],
            "guess": _guess(name, _kind(kind)) if guessing else SKIP,
        }
        for i, name in enumerate(data.header)
        if name
    ]
    return {
        "viewer": viewer,
        "token": token,
        "kind": kind,
        "kinds": KINDS,
        "file_name": path.name,
        "rows": len(data.records),
        "columns": columns,
        "fields": list(_kind(kind).fields) if guessing else [],
        "custom_prefix": CUSTOM_PREFIX,
        "field_labels": people_files.FIELD_LABELS,
        "slug": _slug,
        "chosen": chosen or {},
        "error": "",
        "confirmation": "",
    }


@router.get("/imports/{token}", response_class=HTMLResponse)
def mapping_form(
    request: Request, viewer: PageViewer, token: str, kind: str = "people"
) -> HTMLResponse:
    """The column-mapping step: each column of the file, a few sample values, a field."""
    return page(request, "import_mapping.html", **_mapping_context(viewer, token, kind))


@router.post("/imports/{token}/apply", response_model=None)
async def apply(request: Request, viewer: FormViewer, token: str) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_apply, request, viewer, token, fields)


def _mapping(header: list[str], fields: dict[str, str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for i, column in enumerate(header):
        choice = fields.get(f"map_{i}", SKIP)
        if not column or choice == SKIP:
            continue
        mapping[column] = f"{CUSTOM_PREFIX}{_slug(column)}" if choice == CUSTOM else choice
    return mapping


def _apply(request: Request, viewer: Viewer, token: str, fields: dict[str, str]) -> Response:
    kind = fields.get("kind", "people")
    if kind not in KINDS:
        raise InvalidInput(f"unknown import kind {kind!r}")
    ws = viewer.workspace_id
    path = uploads.csv_path(workspace_id=ws, token=token)
    header = _read(path).header
    now = utcnow()
    if kind != "exclusion_list":
        try:
            with site_of(request).engine.begin() as db:
                job = submit.csv_import(
                    db,
                    workspace_id=ws,
                    kind=kind,
                    path=path,
                    errors_path=uploads.errors_path(workspace_id=ws, token=token),
                    mapping=_mapping(header, fields),
                    actor=viewer.actor,
                    now=now,
                    upload=token,
                )
        except InvalidInput as exc:
            return _mapping_again(request, viewer, token, kind, fields, error=exc.message)
        return redirect(request, f"/jobs/{job.id}")
    engine = site_of(request).engine
    try:
        # Read and checked before any write; one short save; an exclusion that unenrolls
        # on save ends the enrollments after its commit, in parts.
        with path.open(encoding="utf-8-sig", newline="") as source:
            report = exclusion_lists.import_exclusion_list_in_parts(
                engine,
                engine.begin,
                workspace_id=ws,
                source=source,
                actor=viewer.actor,
                now=now,
                column=fields.get("column", ""),
                exclusion=fields.get("exclusion", ""),
                level=fields.get("level", "company"),
                confirm=fields.get("confirm") == "yes",
            )
    except ConfirmationRequired as exc:
        return _mapping_again(request, viewer, token, kind, fields, confirmation=exc.message)
    except InvalidInput as exc:
        return _mapping_again(request, viewer, token, kind, fields, error=exc.message)
    if report.errors:
        with uploads.errors_path(workspace_id=ws, token=token).open(
            "w", newline="", encoding="utf-8"
        ) as out:
            reporting.write_error_report(report, out)
    return page(
        request,
        "import_result.html",
        viewer=viewer,
        token=token,
        kind=kind,
        kinds=KINDS,
        file_name=path.name,
        report=report,
        shown=report.errors[:SHOWN_ERRORS],
        exclusion=fields.get("exclusion", ""),
    )


def _mapping_again(
    request: Request,
    viewer: Viewer,
    token: str,
    kind: str,
    fields: dict[str, str],
    *,
    error: str = "",
    confirmation: str = "",
) -> HTMLResponse:
    """The mapping step again, with the choices made and what stopped the import."""
    context = _mapping_context(viewer, token, kind, fields)
    context.update(error=error, confirmation=confirmation)
    status = 200 if confirmation else 422  # a question to answer, not a refusal
    return page(request, "import_mapping.html", status_code=status, **context)


@router.get("/imports/{token}/errors.csv", response_model=None)
def error_report(request: Request, viewer: PageViewer, token: str) -> Response:
    path = uploads.errors_path(workspace_id=viewer.workspace_id, token=token)
    if not path.is_file():
        raise NotFound("this import has no error report")
    name = uploads.csv_path(workspace_id=viewer.workspace_id, token=token).stem
    return Response(
        path.read_bytes(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{_slug(name) or "import"}.errors.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
