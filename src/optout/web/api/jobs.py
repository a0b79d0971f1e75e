"""Background jobs: long work asked for through the API answers `202 Accepted` at once,
with the job's URL in `Location`; GET that URL until `state` is `done` or `failed`
(`Retry-After` says when to look again). A bulk unenroll runs in set-based chunks that
each commit (R10); a CSV import runs all or nothing (R23) and its report is the
job's `result`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from optout.clock import utcnow
from optout.jobs import live, store, submit
from optout.jobs.store import Job
from optout.services.imports import people_files
from optout.web import uploads
from optout.web.api.common import BodyId, Input, PathId, read
from optout.web.api.common import transaction as tx
from optout.web.api.imports import REQUEST_BODY, Mapping, _upload
from optout.web.auth import ApiPrincipal

router = APIRouter(prefix="/jobs", tags=["jobs"])
POLL_SECONDS = 1
ActiveStatus = Literal["not_started", "in_progress"]


class JobOut(BaseModel):
    id: int
    kind: str = Field(description="bulk_unenroll | import")
    label: str
    state: str = Field(description="queued | running | done | failed")
    done: int = Field(description="How much is done (enrollments ended, rows read).")
    total: int | None = Field(description="How much there is; null until counted.")
    percent: int
    result: dict[str, Any] | None = Field(description="The summary, once done.")
    error: str = Field(description="Why it failed, when it did.")
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    restarts: int = Field(description="Times it was taken over after its process stopped.")

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            kind=job.kind,
            label=str(job.params.get("label", job.kind)),
            state=job.state,
            done=job.done,
            total=job.total,
            percent=job.percent,
            result=job.result,
            error=job.error,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            restarts=job.restarts,
        )


class BulkUnenrollJobIn(Input):
    statuses: Annotated[list[ActiveStatus], Field(min_length=1)] = Field(
        description="Unenroll every enrollment in these statuses."
    )
    sequence_id: BodyId | None = Field(None, description="Only this sequence; else all.")
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "bulk unenroll"
    chunk: Annotated[int, Field(ge=100, le=100_000)] | None = Field(
        None, description="Enrollments per committed step (default 20,000)."
    )


def _accepted(request: Request, response: Response, job: Job) -> JobOut:
    response.status_code = 202
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
    response.headers["Retry-After"] = str(POLL_SECONDS)
    return JobOut.of(job)


@router.post(
    "/bulk-unenroll",
    response_model=JobOut,
    status_code=202,
    summary="Bulk unenroll by status, in the background",
)
def bulk_unenroll(
    request: Request, response: Response, principal: ApiPrincipal, data: BulkUnenrollJobIn
) -> JobOut:
    """Queue the unenrolling of every enrollment in the given statuses, of one sequence
    or of all; not an opt-out. Poll the `Location` for progress and the totals."""
    with tx(request) as db:
        job = submit.bulk_unenroll(
            db,
            workspace_id=principal.workspace_id,
            statuses=data.statuses,
            sequence_id=data.sequence_id,
            reason=data.reason,
            chunk=data.chunk,
            actor=principal.actor,
            now=utcnow(),
        )
    return _accepted(request, response, job)


async def _import(
    request: Request, response: Response, principal: ApiPrincipal, kind: str, pairs: Any
) -> JobOut:
    source, given = await _upload(request, pairs)
    mapping = people_files.parse_mapping(given)
    raw = source.buffer
    ws = principal.workspace_id
    token = uploads.save(workspace_id=ws, name=getattr(raw, "name", "upload.csv"), data=raw.read())
    with tx(request) as db:
        job = submit.csv_import(
            db,
            workspace_id=ws,
            kind=kind,
            path=uploads.csv_path(workspace_id=ws, token=token),
            errors_path=uploads.errors_path(workspace_id=ws, token=token),
            mapping=mapping,
            actor=principal.actor,
            now=utcnow(),
            upload=token,
        )
    return _accepted(request, response, job)


@router.post(
    "/imports/people",
    response_model=JobOut,
    status_code=202,
    summary="Import people from CSV, in the background",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def import_people(
    request: Request, response: Response, principal: ApiPrincipal, map: Mapping = None
) -> JobOut:
    """The same file and mapping as `POST /imports/people`; the answer comes at once and
    the job's `result` holds the report: rows, created, updated, unchanged and, when
    nothing was imported, the first errors."""
    return await _import(request, response, principal, "people", map)


@router.post(
    "/imports/companies",
    response_model=JobOut,
    status_code=202,
    summary="Import companies from CSV, in the background",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def import_companies(
    request: Request, response: Response, principal: ApiPrincipal, map: Mapping = None
) -> JobOut:
    """The same file and mapping as `POST /imports/companies`, answered at once."""
    return await _import(request, response, principal, "companies", map)


@router.get("", response_model=list[JobOut], summary="List recent jobs")
def list_jobs(request: Request, principal: ApiPrincipal) -> list[JobOut]:
    """The 50 newest jobs of the workspace, newest first."""
    with read(request) as db:
        found = store.recent(db, workspace_id=principal.workspace_id, limit=50)
    return [JobOut.of(live.overlay(job)) for job in found]


@router.get("/{job_id}", response_model=JobOut, summary="Get a job: state, progress, result")
def get_job(
    request: Request, response: Response, principal: ApiPrincipal, job_id: PathId
) -> JobOut:
    with read(request) as db:
        job = live.overlay(store.get(db, workspace_id=principal.workspace_id, job_id=job_id))
    if not job.finished:
        response.headers["Retry-After"] = str(POLL_SECONDS)
    return JobOut.of(job)
