"""Background job pages: the recent jobs of the workspace, and one job with a progress
bar that polls a small fragment (htmx) until the job is done or failed, then shows its
summary. The job lives in the database, so a reload or a restart shows it where it is."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from optout.jobs import live, store
from optout.web.pages.render import page
from optout.web.pages.route import page_router
from optout.web.pages.viewer import PageViewer
from optout.web.site import site_of

router = page_router()
STATE_LABELS = {
    "queued": "Waiting to start",
    "running": "Running",
    "done": "Done",
    "failed": "Failed",
}


def _job(request: Request, workspace_id: int, job_id: int) -> store.Job:
    with site_of(request).reading() as db:
        return live.overlay(store.get(db, workspace_id=workspace_id, job_id=job_id))


@router.get("/jobs", response_class=HTMLResponse)
def job_list(request: Request, viewer: PageViewer) -> HTMLResponse:
    with site_of(request).reading() as db:
        found = store.recent(db, workspace_id=viewer.workspace_id, limit=50)
    return page(
        request,
        "jobs.html",
        viewer=viewer,
        jobs=[live.overlay(job) for job in found],
        labels=STATE_LABELS,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, viewer: PageViewer, job_id: int) -> HTMLResponse:
    job = _job(request, viewer.workspace_id, job_id)
    return page(request, "job.html", viewer=viewer, job=job, labels=STATE_LABELS)


@router.get("/jobs/{job_id}/progress", response_class=HTMLResponse)
def job_progress(request: Request, viewer: PageViewer, job_id: int) -> HTMLResponse:
    """The fragment the job page polls: the bar while it runs, the summary at the end."""
    job = _job(request, viewer.workspace_id, job_id)
    return page(request, "fragments/job_progress.html", viewer=viewer, job=job, labels=STATE_LABELS)
