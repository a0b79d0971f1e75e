"""The steps of each kind of job. A step works inside the transaction the runner opens
for it and returns its progress, which the runner records in that same transaction.

- `bulk_unenroll` (R10): the first step fixes what the job covers (the enrollments that
  match now, up to the highest id) and counts them; each next step ends the next chunk
  by id, set-based, and records where it got to with its commit. A step run again after
  a crash starts from the last committed point and only finds what is left, so a job
  taken over halfway finishes the rest and never ends anyone twice.
- `import`: a people or companies CSV import. The file is read and checked before the
  first step (`PREPARE`, outside any transaction); a file with an unusable row writes
  nothing (R23). A people file is then applied in parts of `people_files.CHUNK_ROWS`
  addresses, a step each, which records where it got to with its commit; a rerun after
  a crash goes on from there. A companies file's links are checked too before the first
  step (in a transaction that only reads), and it is applied in parts the same way. Each
  part's size is set by how long the one before took.
- `exclusion_save`: a confirmed save that unenrolls many. The first step saves it with
  its stored matches: from that commit it is in force, and the send-time check refuses
  everyone it excludes. A crash before that commit leaves nothing saved, and the rerun
  saves it. Each next step ends the next part of the enrollments it removes (R13), by
  id, and records where it got to with its commit.
- `crm_sync`: a sync asked for on the CRM page (`optout.crm.sync_job`): the sync runs
  before the step (it commits page by page itself), the step records its summary.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.crm import sync_job
from optout.db.engine import read_transaction
from optout.errors import NotFound
from optout.jobs.store import Job, StepOutcome
from optout.services import in_parts
from optout.services.enrollments import enrolling
from optout.services.exclusions import saves, unenroll
from optout.services.exclusions.preview import Preview
from optout.services.imports import people_files, reporting
from optout.services.imports.apply import finish_file

Progress = Callable[[int, int], None]
BULK_CHUNK = 5_000  # enrollments ended per step: well under a second of writes


class Step(Protocol):
    def __call__(
        self, db: Connection, job: Job, *, now: datetime, progress: Progress, prepared: Any = None
    ) -> StepOutcome: ...


def bulk_unenroll(
    db: Connection, job: Job, *, now: datetime, progress: Progress, prepared: Any = None
) -> StepOutcome:
    p = job.params
    statuses = list(p["statuses"])
    sequence_id = p.get("sequence_id")
    if "last_id" not in p:
        scope = enrolling.bulk_unenroll_scope(
            db, workspace_id=job.workspace_id, statuses=statuses, sequence_id=sequence_id
        )
        result = {"enrollments_ended": 0, "emails_cancelled": 0}
        return StepOutcome(
            done=0,
            total=scope.total,
            result=result,
            finished=scope.total == 0,
            params={"last_id": scope.last_id},
        )
    step = enrolling.bulk_unenroll_step(
        db,
        workspace_id=job.workspace_id,
        statuses=statuses,
        sequence_id=sequence_id,
        after_id=int(p.get("after_id") or 0),
        last_id=int(p["last_id"]),
        limit=int(p.get("chunk") or BULK_CHUNK),
        actor=job.created_by,
        now=now,
        reason=str(p.get("reason") or "bulk unenroll"),
    )
    removal = step.removal
    before = job.result or {}
    ended = int(before.get("enrollments_ended", 0)) + removal.enrollments_ended
    cancelled = int(before.get("emails_cancelled", 0)) + removal.emails_cancelled
    return StepOutcome(
        done=ended,
        total=max(job.total or 0, ended),
        result={"enrollments_ended": ended, "emails_cancelled": cancelled},
        finished=step.reached_id == int(p.get("after_id") or 0),
        params={"after_id": step.reached_id},
    )


def read_import(engine: Engine, job: Job, progress: Progress) -> people_files.CheckedImport:
    """An import's file, read and checked before its steps, outside any write
    transaction (parsing a large file takes seconds: no lock may be held meanwhile); a
    companies file's links are checked in a transaction that only reads."""
    return _checked(lambda: read_transaction(engine), job, progress)


def _checked(
    reading: Callable[[], AbstractContextManager[Connection]], job: Job, progress: Progress
) -> people_files.CheckedImport:
    path = Path(job.params["path"])
    if not path.is_file():
        raise NotFound("the uploaded file is gone (uploads are kept for a day); upload it again")
    with path.open(encoding="utf-8-sig", newline="") as source:
        return people_files.check_import(
            reading,
            kind=job.params["kind"],
            workspace_id=job.workspace_id,
            source=source,
            mapping=dict(job.params["mapping"]),
            progress=progress,
        )


def csv_import(
    db: Connection, job: Job, *, now: datetime, progress: Progress, prepared: Any = None
) -> StepOutcome:
    """The next part of a checked people or companies file, its size set by how long the
    last one took (`in_parts.next_part_size`); or the refusal of the whole file (R23)."""
    checked = prepared
    if not isinstance(checked, people_files.CheckedImport):  # a step run without its preparation
        checked = _checked(lambda: nullcontext(db), job, progress)
    if checked.refused is not None:
        return _import_finished(job, checked.refused)
    began = time.monotonic()
    file, steps = checked.file, checked.steps
    start = int(job.params.get("next") or 0)
    size = int(job.params.get("size") or people_files.CHUNK_ROWS)
    stop = min(start + size, file.size)
    common: dict[str, Any] = {"workspace_id": job.workspace_id, "actor": job.created_by, "now": now}
    before = (job.result or {}).get("applied") or {}
    applied = type(steps.nothing)(**before) + steps.part(
        db, file=file, start=start, stop=stop, **common
    )
    if stop < file.size:
        progress(stop, file.size)
        return StepOutcome(
            done=stop,
            total=file.size,
            result={"kind": steps.kind, "rows": file.parsed.rows, "applied": asdict(applied)},
            finished=False,
            params={"next": stop, "size": in_parts.next_part_size(size, time.monotonic() - began)},
        )
    report = finish_file(db, steps, file=file, applied=applied, progress=progress, **common)
    return _import_finished(job, report)


def _import_finished(job: Job, report: reporting.ImportReport) -> StepOutcome:
    if report.errors:
        # The report quotes the people of the file: readable by the service's owner only.
        errors = os.open(job.params["errors_path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(errors, "w", newline="", encoding="utf-8") as out:
            reporting.write_error_report(report, out)
    result = {
        "kind": report.kind,
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "errors": len(report.errors),
        "applied": report.applied,
        "first_errors": [
            {"row": e.row, "column": e.column, "value": e.value, "reason": e.reason}
            for e in report.errors[:50]
        ],
    }
    return StepOutcome(done=report.rows, total=report.rows, result=result, finished=True)


def read_exclusion_save(engine: Engine, job: Job, progress: Progress) -> Any:
    """The exclusion as it will be saved and its preview, read before the step's write
    transaction opens (a filter of thousands of domains takes a while to read)."""
    p, ws = job.params, job.workspace_id
    if p.get("saved_id") is not None:
        return None  # saved already: what is left is ending its enrollments
    with read_transaction(engine) as db:
        if p.get("exclusion_id") is None:
            draft = saves.draft_of(name=p["name"], **_toggles(p))
            return saves.impact_of_new(db, workspace_id=ws, draft=draft, now=utcnow(), confirm=True)
        current = saves.get_by_id(db, workspace_id=ws, exclusion_id=int(p["exclusion_id"]))
        _, draft = saves.changed(
            db, workspace_id=ws, name=current.name, new_name=p["name"] or None, **_toggles(p)
        )
        return saves.guard(db, workspace_id=ws, draft=draft, now=utcnow(), confirm=True)


def _toggles(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "level": p["level"],
        "filter": p["filter"],
        "enabled": bool(p["enabled"]),
        "exclude_from_sequences": bool(p["exclude_from_sequences"]),
        "unenroll_existing_on_save": bool(p["unenroll_existing_on_save"]),
    }


def exclusion_save(
    db: Connection, job: Job, *, now: datetime, progress: Progress, prepared: Any = None
) -> StepOutcome:
    """The save, confirmed already (R22), in the first step, with the first part of the
    enrollments it ends (R13); then the rest, a part a step (`exclusions.unenroll`)."""
    p = job.params
    if p.get("saved_id") is not None:
        return _unenroll_part(db, job, now=now, progress=progress)
    common: dict[str, Any] = {
        "workspace_id": job.workspace_id,
        "actor": job.created_by,
        "now": now,
        **_toggles(p),
        "confirm": True,
        "impact": prepared if isinstance(prepared, Preview) else None,
        "unenroll_now": False,
    }
    if p.get("exclusion_id") is None:
        saved = saves.create(db, name=p["name"], **common)
    else:
        current = saves.get_by_id(
            db, workspace_id=job.workspace_id, exclusion_id=int(p["exclusion_id"])
        )
        saved = saves.update(db, name=current.name, new_name=p["name"] or None, **common)
    result = {
        "exclusion_id": saved.exclusion.id,
        "name": saved.exclusion.name,
        "enrollments_ended": saved.removal.enrollments_ended,
        "emails_cancelled": saved.removal.emails_cancelled,
    }
    return StepOutcome(
        done=saved.removal.enrollments_ended,
        total=saved.removal.enrollments_ended,
        result=result,
        finished=not unenroll.sweeps(saved.exclusion),
        params={"saved_id": saved.exclusion.id},
    )


UNENROLL_PART = in_parts.MOST_ROWS  # enrollments ended per step at most


def _unenroll_part(db: Connection, job: Job, *, now: datetime, progress: Progress) -> StepOutcome:
    """The next enrollments a committed save ends, after the last part's highest id; the
    part's size set by how long the last one took. The exclusion is in force from the
    save's commit: the send-time check refuses everyone it excludes meanwhile."""
    began = time.monotonic()
    p, ws = job.params, job.workspace_id
    saved = saves.get_by_id(db, workspace_id=ws, exclusion_id=int(p["saved_id"]))
    size = int(p.get("size") or UNENROLL_PART)
    ids = saves.removable_ids(
        db, workspace_id=ws, exclusion=saved, now=now, after=int(p.get("after") or 0), limit=size
    )
    removal = saves.sweep(
        db, workspace_id=ws, exclusion=saved, actor=job.created_by, now=now, within=ids
    )
    before = job.result or {}
    ended = int(before.get("enrollments_ended", 0)) + removal.enrollments_ended
    cancelled = int(before.get("emails_cancelled", 0)) + removal.emails_cancelled
    progress(ended, ended)
    return StepOutcome(
        done=ended,
        total=ended,
        result={**before, "enrollments_ended": ended, "emails_cancelled": cancelled},
        finished=len(ids) < size,
        params={
            "after": max(ids, default=int(p.get("after") or 0)),
            "size": in_parts.next_part_size(size, time.monotonic() - began, most=UNENROLL_PART),
        },
    )


STEPS: dict[str, Step] = {
    "bulk_unenroll": bulk_unenroll,
    "import": csv_import,
    "exclusion_save": exclusion_save,
    sync_job.KIND: sync_job.record,
}
Prepare = Callable[[Engine, Job, Progress], Any]
# What a kind reads before its steps, outside the write transaction; given to each step.
PREPARE: dict[str, Prepare] = {
    "import": read_import,
    "exclusion_save": read_exclusion_save,
    sync_job.KIND: sync_job.run,
}
# Kinds any process may run; an import reads a file the web service received, and a CRM
# sync is handed the connector the page built, so only the web service's runner takes them.
ANYWHERE = ("bulk_unenroll", "exclusion_save")
