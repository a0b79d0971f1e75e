"""CSV imports (R23, R34): people, companies, or one column straight into an exclusion list.

The file comes as the raw body (`Content-Type: text/csv`) or as the `file` part of a
`multipart/form-data` upload; the column mapping as repeated `map=Column=field` query
parameters (or `map` form fields). When any row cannot be used nothing is imported:
the answer is 422 `import_rejected` with the report, whose `errors` list every row
(row, column, value, reason), and the same error report as CSV text in
`error_report_csv`. A client that sends `Accept: text/csv` gets that CSV file itself
as the 422 body instead, ready to save. Re-sending the same file changes nothing.
"""

from __future__ import annotations

import io
from typing import Annotated, Any, TextIO

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from optout.clock import utcnow
from optout.db.engine import read_transaction
from optout.errors import InvalidInput
from optout.services.access.accounts import Principal
from optout.services.imports import exclusion_lists, people_files, reporting
from optout.services.imports.reporting import ImportReport
from optout.web.api.common import Name
from optout.web.api.common import transaction as tx
from optout.web.api.errors import ApiError
from optout.web.api.schemas import Level
from optout.web.auth import ApiPrincipal
from optout.web.body_limits import UPLOAD_BYTES, describe
from optout.web.site import site_of

router = APIRouter(prefix="/imports", tags=["imports"])

MAX_UPLOAD_BYTES = UPLOAD_BYTES
CSV_TYPES = ("text/csv", "text/plain", "application/csv")
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "map": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["file"],
            }
        },
    },
}
MAP_HELP = "Column=field, repeated: map=Email=email&map=Status=status&map=Industry=fields.industry"
Mapping = Annotated[list[Annotated[str, Query(max_length=500)]] | None, Query(description=MAP_HELP)]


class RowErrorOut(BaseModel):
    row: int = Field(description="As a spreadsheet shows it: the header is row 1.")
    column: str
    value: str
    reason: str


class ImportReportOut(BaseModel):
    kind: str = Field(description="people | companies | exclusion_list")
    rows: int
    created: int
    updated: int
    unchanged: int
    applied: bool = Field(description="False: rejected, nothing was written.")
    errors: list[RowErrorOut]

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            kind=report.kind,
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            applied=report.applied,
            errors=[RowErrorOut(**vars(e)) for e in report.errors],
        )


class _Rejected(Exception):
    def __init__(self, report: ImportReport) -> None:
        super().__init__("import rejected")
        self.report = report


async def _upload(request: Request, query_map: list[str] | None) -> tuple[TextIO, list[str]]:
    """The uploaded file as text (decoded by the import, which names a bad byte) and the
    column mapping, from a raw text/csv body or a multipart upload."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_UPLOAD_BYTES:
        raise _too_large()
    mapping = list(query_map or [])
    name = None
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=200)
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise InvalidInput("a multipart upload needs the CSV in a file part named 'file'")
        data, name = await part.read(), part.filename
        mapping += [value for value in form.getlist("map") if isinstance(value, str)]
    elif kind in CSV_TYPES:
        data = await request.body()
    else:
        raise ApiError(
            415,
            "unsupported",
            "send the CSV as the body with Content-Type text/csv, or as the 'file' part of "
            "a multipart/form-data upload",
        )
    if len(data) > MAX_UPLOAD_BYTES:  # a chunked body declares no length up front
        raise _too_large()
    raw = io.BytesIO(data)
    raw.name = name or "upload.csv"
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""), mapping


def _too_large() -> ApiError:
    return ApiError(
        413, "too_large", f"the file is larger than {describe(MAX_UPLOAD_BYTES)}, the limit"
    )


def _rejection(request: Request, report: ImportReport) -> Response:
    out = io.StringIO()
    reporting.write_error_report(report, out)
    count = len(report.errors)
    message = f"{count} row(s) cannot be used; nothing was imported"
    if "text/csv" in request.headers.get("accept", ""):
        return Response(
            out.getvalue(),
            status_code=422,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="errors.csv"'},
        )
    raise ApiError(
        422,
        "import_rejected",
        message,
        report=ImportReportOut.of(report).model_dump(mode="json"),
        error_report_csv=out.getvalue(),
    )


RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Bad input; for a file with unusable rows, code `import_rejected` with "
        "the report and `error_report_csv` (or, with Accept: text/csv, the CSV itself)",
        "content": {"application/json": {}, "text/csv": {}},
    },
    413: {"description": "Upload too large"},
    415: {"description": "Neither text/csv nor multipart/form-data"},
}


@router.post(
    "/people",
    response_model=ImportReportOut,
    summary="Import people from CSV",
    openapi_extra={"requestBody": REQUEST_BODY},
    responses=RESPONSES,
)
async def import_people(request: Request, principal: ApiPrincipal, map: Mapping = None) -> Any:
    """Create or update people by address. Fields: email, first_name, last_name, title,
    status, company_domain (creates missing companies), company_name, email_opt_out (true
    opts out; false never clears an opt-out), crm_id, fields.<name>. Map a `Status`
    column to `status` and an exclusion on `person.status = "Exclude"` excludes them."""
    return await _import_file(request, principal, map, "people")


async def _import_file(
    request: Request, principal: Principal, query_map: list[str] | None, kind: str
) -> Any:
    source, pairs = await _upload(request, query_map)
    mapping = people_files.parse_mapping(pairs)
    try:
        report = await run_in_threadpool(_apply_file, request, principal, kind, source, mapping)
    except _Rejected as rejected:
        return _rejection(request, rejected.report)
    return ImportReportOut.of(report)


def _apply_file(
    request: Request, principal: Principal, kind: str, source: TextIO, mapping: dict[str, str]
) -> ImportReport:
    """The whole file is read and checked before any write (a companies file's links in
    a transaction that only reads); then it is applied in parts, each its own short
    transaction, so the write lock is never held for long (an unsubscribe or another
    workspace's write waits behind one part only)."""
    engine = site_of(request).engine
    checked = people_files.check_import(
        lambda: read_transaction(engine),
        kind=kind,
        workspace_id=principal.workspace_id,
        source=source,
        mapping=mapping,
    )
    if checked.refused is not None:
        raise _Rejected(checked.refused)
    return people_files.apply_checked(
        engine,
        lambda: tx(request),
        checked,
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        now=utcnow(),
    )


@router.post(
    "/companies",
    response_model=ImportReportOut,
    summary="Import companies from CSV",
    openapi_extra={"requestBody": REQUEST_BODY},
    responses=RESPONSES,
)
async def import_companies(request: Request, principal: ApiPrincipal, map: Mapping = None) -> Any:
    """Create or update companies by domain. Fields: domain, name, parent_domain (links
    it under its parent), crm_id, fields.<name>."""
    return await _import_file(request, principal, map, "companies")


@router.post(
    "/exclusion-list",
    response_model=ImportReportOut,
    summary="Import a CSV column into an exclusion list",
    openapi_extra={"requestBody": REQUEST_BODY},
    responses={**RESPONSES, 409: {"description": "Needs confirmation"}},
)
async def import_exclusion_list(
    request: Request,
    principal: ApiPrincipal,
    column: Annotated[str, Query(min_length=1, max_length=500, description="Holds the values.")],
    exclusion: Annotated[Name, Query(description="Created if missing, else values are added.")],
    level: Annotated[Level, Query(description="company: domains; people: addresses.")],
    confirm: Annotated[bool, Query(description="Save even a mass exclusion.")] = False,
) -> Any:
    """One column of domains (company level: `company.domain in (...)`) or addresses
    (people level: `person.email in (...)`) straight into an exclusion; values
    listed already are left as they are."""
    source, _ = await _upload(request, None)

    def apply() -> ImportReport:
        report = exclusion_lists.import_exclusion_list_in_parts(
            site_of(request).engine,
            lambda: tx(request),
            workspace_id=principal.workspace_id,
            source=source,
            column=column,
            exclusion=exclusion,
            level=level,
            actor=principal.actor,
            now=utcnow(),
            confirm=confirm,
        )
        if report.errors:
            raise _Rejected(report)
        return report

    try:
        report = await run_in_threadpool(apply)
    except _Rejected as rejected:
        return _rejection(request, rejected.report)
    return ImportReportOut.of(report)
